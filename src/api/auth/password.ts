import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/**
 * A password as stored in `<state>/users.json`: scrypt (node:crypto) with a random salt per user
 * and its parameters beside the hash, so raising them later leaves old hashes checkable.
 */
export interface PasswordHash {
  alg: "scrypt";
  /** CPU/memory cost (a power of 2), block size, parallelism, derived key length in bytes. */
  N: number;
  r: number;
  p: number;
  keylen: number;
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
}

/** 2^15 × 8 × 128 bytes = 32 MiB and some 50–100 ms per check here: slow for a guesser, fine for a login. */
export const SCRYPT_PARAMS = { N: 1 << 15, r: 8, p: 1, keylen: 32 } as const;

function derive(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keylen: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem above 128·N·r (Node's default of 32 MiB is exactly that at N=2^15, r=8: too tight).
    scrypt(password.normalize("NFC"), salt, keylen, { N, r, p, maxmem: 256 * N * r + (1 << 20) }, (e, key) =>
      e ? reject(e) : resolve(key),
    );
  });
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const { N, r, p, keylen } = SCRYPT_PARAMS;
  const salt = randomBytes(16);
  const hash = await derive(password, salt, N, r, p, keylen);
  return { alg: "scrypt", N, r, p, keylen, salt: salt.toString("base64"), hash: hash.toString("base64") };
}

/** Whether `password` is the one hashed, compared in constant time. */
export async function checkPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const want = Buffer.from(stored.hash, "base64");
  const got = await derive(
    password,
    Buffer.from(stored.salt, "base64"),
    stored.N,
    stored.r,
    stored.p,
    want.length,
  );
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * A hash no password matches (a random one): checked against when the user does not exist, so an
 * unknown user costs the same time as a wrong password and the answer tells nothing about which.
 */
export const DUMMY_HASH: PasswordHash = {
  alg: "scrypt",
  ...SCRYPT_PARAMS,
  salt: randomBytes(16).toString("base64"),
  hash: randomBytes(SCRYPT_PARAMS.keylen).toString("base64"),
};

/** Passwords the window and `bsched user` accept: long enough to resist guessing online. */
export const MIN_PASSWORD = 8;
export const MAX_PASSWORD = 1024;
