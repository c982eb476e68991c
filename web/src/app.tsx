/** The window's frame: the front-end engineer replaces this with the login and the tabs. */
export function App() {
  return <h1>Backup Scheduler</h1>;
}
