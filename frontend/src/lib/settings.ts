// Types the `berth` library owns (app/src/settings.rs, app/src/vm/mod.rs),
// kept by hand: that crate has no TypeScript derive. The desktop's own types
// are generated into model.ts, which imports these.

export type SharedFolder = { path: string; readOnly: boolean };
export type VmSettings = {
  cpus: number;
  memoryMib: number;
  diskGib: number;
  accel: string;
  transport: string;
  insecureRegistries: string[];
  imageDir: string | null;
  restartOnCrash: boolean;
  debug: boolean;
  sharedFolders: SharedFolder[];
  fileSharing: string;
};
export type Settings = { vm: VmSettings; app: { startAtLogin: boolean; welcomeDone?: boolean } };

// Only the fields the Troubleshoot page reads.
export type VmState = {
  phase: string;
  accel: string;
  transport: string;
  /** Why this transport, and how to get a faster one. */
  transportWhy: string;
  dockerHost: string;
  bootMs: number | null;
  restarts: number;
  lastCrash: string | null;
  fileSharing: string;
};
