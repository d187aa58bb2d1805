/** Bad arguments or input files: exit code 2, like an invalid spec. */
export class UsageError extends Error {
  override name = "UsageError";
}
