#!/usr/bin/env node
// podgen is written in TypeScript and runs through tsx, so no build step stands between an edit
// of a spec or of podgen itself and the next command.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
