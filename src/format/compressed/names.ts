/** Names inside a compressed backup (kept apart from the writer so that reading them loads no tar code). */
export function selfExtractingName(backupName: string): string {
  return `${backupName}.sh`;
}

export function manifestMemberName(backupName: string): string {
  return `.bsched-${backupName}.manifest.json`;
}
