// The CLI from its sources, whatever bundle bin/bsched.js would use (test/startup.test.ts).
import { main } from "../../src/cli/main.ts";

process.exitCode = await main(process.argv);
