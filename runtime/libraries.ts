// The one cache of loaded kernel libraries: `podgen bench`, `podgen tune`, `podgen verify` and the
// GPU suite load each built library once for the whole run and close them all at its end.
import { KernelLibrary } from "./abi.ts";

export class KernelLibraries {
  /** By path: a build's folder is named by its content hash, so a path is one library. */
  private readonly loaded = new Map<string, KernelLibrary>();

  /** The library at `path` with symbol prefix `prefix`, loaded on first use. */
  get(path: string, prefix: string): KernelLibrary {
    let lib = this.loaded.get(path);
    if (!lib) this.loaded.set(path, (lib = new KernelLibrary(path, prefix)));
    else if (lib.prefix !== prefix) throw new Error(`kernel library ${path} is loaded with prefix "${lib.prefix}", not "${prefix}"`);
    return lib;
  }

  /** Unloads every library loaded so far; the cache is empty (and usable) afterwards. */
  close(): void {
    for (const lib of this.loaded.values()) lib.close();
    this.loaded.clear();
  }
}
