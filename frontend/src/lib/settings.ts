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
  idlePauseSeconds: number;
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
  /** Paused while idle since this time (unix seconds). */
  pausedSince?: number | null;
};

export type GuestMemory = { totalBytes: number; freeBytes: number; cachedBytes: number; usedBytes: number };
/** What the VM costs the host (app/src/vm/usage.rs). */
export type VmUsage = {
  guest: GuestMemory | null;
  qemuRssBytes: number | null;
  diskBytes: number | null;
  diskLimitBytes: number | null;
};
