// The app's commands (app/src-tauri/src/commands.rs), typed.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { PullEvent } from "./format";

export type EngineStatus = { state: "running" | "stopped"; detail: string; dockerHost: string };
export type PortLink = { label: string; url: string | null };
export type Container = {
  id: string;
  name: string;
  image: string;
  state: string;
  status: string;
  ports: PortLink[];
  project: string | null;
};
export type Image = { id: string; tags: string[]; size: number; created: number; containers: number };
export type RunForm = { image: string; name: string; ports: string[]; env: string[]; volumes: string[]; command: string };
export type LogLine = { stream: "stdout" | "stderr"; text: string };

export const engineStatus = () => invoke<EngineStatus>("engine_status");
export const listContainers = () => invoke<Container[]>("list_containers");
export const containerAction = (id: string, action: string) => invoke<void>("container_action", { id, action });
export const listImages = () => invoke<Image[]>("list_images");
export const removeImage = (id: string) => invoke<void>("remove_image", { id });
export const runContainer = (form: RunForm) => invoke<string>("run_container", { form });
export const stopStream = (id: number) => invoke<void>("stop_stream", { id });

export function pullImage(reference: string, onProgress: (e: PullEvent) => void): Promise<void> {
  const ch = new Channel<PullEvent>();
  ch.onmessage = onProgress;
  return invoke<void>("pull_image", { reference, onProgress: ch });
}

export function followLogs(id: string, timestamps: boolean, onLine: (l: LogLine) => void): Promise<number> {
  const ch = new Channel<LogLine>();
  ch.onmessage = onLine;
  return invoke<number>("follow_logs", { id, timestamps, onLine: ch });
}

export function watchEvents(onEvent: (what: string) => void): Promise<number> {
  const ch = new Channel<string>();
  ch.onmessage = onEvent;
  return invoke<number>("watch_events", { onEvent: ch });
}

export function execStart(id: string, cols: number, rows: number, onOutput: (bytes: Uint8Array) => void): Promise<number> {
  const ch = new Channel<number[]>();
  ch.onmessage = (b) => onOutput(new Uint8Array(b));
  return invoke<number>("exec_start", { id, cols, rows, onOutput: ch });
}
export const execInput = (id: number, data: string) => invoke<void>("exec_input", { id, data });
export const execResize = (id: number, cols: number, rows: number) => invoke<void>("exec_resize", { id, cols, rows });

export type Volume = { name: string; driver: string; mountpoint: string; usedBy: string[] };
export type Network = { id: string; name: string; driver: string; subnets: string[] };
export type StatsPoint = { cpuPercent: number; memory: number; memoryLimit: number; netRx: number; netTx: number };

export const pruneImages = () => invoke<number>("prune_images");
export const listVolumes = () => invoke<Volume[]>("list_volumes");
export const createVolume = (name: string) => invoke<void>("create_volume", { name });
export const removeVolume = (name: string) => invoke<void>("remove_volume", { name });
export const listNetworks = () => invoke<Network[]>("list_networks");
export const inspect = (kind: "container" | "network", id: string) => invoke<unknown>("inspect", { kind, id });

export function watchStats(id: string, onSample: (s: StatsPoint) => void): Promise<number> {
  const ch = new Channel<StatsPoint>();
  ch.onmessage = onSample;
  return invoke<number>("watch_stats", { id, onSample: ch });
}

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
export type Troubleshoot = {
  vm: { phase: string; accel: string; transport: string; dockerHost: string; bootMs: number | null; restarts: number; lastCrash: string | null; fileSharing: string } | null;
  console: string;
  resetDeletes: string[];
};

export const getSettings = () => invoke<{ settings: Settings; path: string }>("get_settings");
export const saveSettings = (settings: Settings) => invoke<boolean>("save_settings", { settings });
export type DockerCli = {
  current: string;
  berthContext: string | null;
  installed: boolean;
  engineHost: string;
  config: string;
};
export const dockerCli = () => invoke<DockerCli>("docker_cli");
export const setDockerCli = (useBerth: boolean) => invoke<DockerCli>("set_docker_cli", { useBerth });
export const troubleshoot = () => invoke<Troubleshoot>("troubleshoot");
export const factoryReset = () => invoke<string[]>("factory_reset");
export const vmStart = () => invoke<string>("vm_start");
export const vmStop = () => invoke<string>("vm_stop");
export const openLink = (url: string) => invoke<void>("open_link", { url });
export type Usage = { id: string; cpuPercent: number | null; memory: number };
export const listUsage = () => invoke<Usage[]>("list_usage");
export type TutorialStarted = { command: string; url: string; already: boolean };
export const startTutorial = () => invoke<TutorialStarted>("start_tutorial");
export const finishWelcome = () => invoke<void>("finish_welcome");
