// The app's commands (app/src-tauri/src/commands/), typed: every `invoke` of
// the frontend goes through here. The types come from the Rust model
// (model.ts, generated) and the `berth` library's settings (settings.ts).
import { Channel, invoke } from "@tauri-apps/api/core";
import type {
  Build,
  BuildStep,
  ContainerRow,
  DiskRow,
  DiskUsage,
  DockerCli,
  EngineStatus,
  ImageRow,
  LogLine,
  NetworkRow,
  PortLink,
  PullEvent,
  RunForm,
  SettingsView,
  StatsPoint,
  Troubleshoot,
  TutorialStarted,
  Usage,
  VolumeRow,
} from "./model";
import type { Settings, SharedFolder, VmSettings } from "./settings";

export type {
  Build,
  BuildStep,
  DiskRow,
  DiskUsage,
  DockerCli,
  EngineStatus,
  LogLine,
  PortLink,
  PullEvent,
  RunForm,
  Settings,
  SharedFolder,
  StatsPoint,
  Troubleshoot,
  TutorialStarted,
  Usage,
  VmSettings,
};
// The pages' names for the rows.
export type Container = ContainerRow;
export type Image = ImageRow;
export type Volume = VolumeRow;
export type Network = NetworkRow;

export const appReady = () => invoke<void>("app_ready");
export const engineStatus = () => invoke<EngineStatus>("engine_status");
export const listContainers = () => invoke<Container[]>("list_containers");
export const containerAction = (id: string, action: string) => invoke<void>("container_action", { id, action });
export const projectAction = (project: string, action: string) => invoke<void>("project_action", { project, action });
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

export const pruneImages = () => invoke<number>("prune_images");
export const listVolumes = () => invoke<Volume[]>("list_volumes");
export const createVolume = (name: string) => invoke<void>("create_volume", { name });
export const removeVolume = (name: string) => invoke<void>("remove_volume", { name });
export const listNetworks = () => invoke<Network[]>("list_networks");
// `docker network create` (bridge): an optional subnet, internal or not.
export const createNetwork = (name: string, subnet: string, internal: boolean) => invoke<void>("create_network", { name, subnet, internal });
export const removeNetwork = (id: string) => invoke<void>("remove_network", { id });
export const inspect = (kind: "container" | "network", id: string) => invoke<unknown>("inspect", { kind, id });

export function watchStats(id: string, onSample: (s: StatsPoint) => void): Promise<number> {
  const ch = new Channel<StatsPoint>();
  ch.onmessage = onSample;
  return invoke<number>("watch_stats", { id, onSample: ch });
}

export const getSettings = () => invoke<SettingsView>("get_settings");
export const saveSettings = (settings: Settings) => invoke<boolean>("save_settings", { settings });
export const dockerCli = () => invoke<DockerCli>("docker_cli");
export const setDockerCli = (useBerth: boolean) => invoke<DockerCli>("set_docker_cli", { useBerth });
export const troubleshoot = () => invoke<Troubleshoot>("troubleshoot");
export const factoryReset = () => invoke<string[]>("factory_reset");
export const vmStart = () => invoke<string>("vm_start");
export const vmStop = () => invoke<string>("vm_stop");
export const openLink = (url: string) => invoke<void>("open_link", { url });
// CPU and memory of these running containers (the ones on screen).
export const listUsage = (ids: string[]) => invoke<Usage[]>("list_usage", { ids });
export const startTutorial = () => invoke<TutorialStarted>("start_tutorial");
export const finishWelcome = () => invoke<void>("finish_welcome");
// The engine's BuildKit build history, newest first (steps without output).
export const listBuilds = () => invoke<Build[]>("list_builds");
// One build with each step's output.
export const buildDetail = (id: string) => invoke<Build>("build_detail", { id });
export const removeBuild = (id: string) => invoke<void>("remove_build", { id });
// Runs the build again with the docker CLI (buildx) and resolves when it ends.
export const rerunBuild = (id: string) => invoke<void>("rerun_build", { id });
// What the engine's data takes, what each kind could free, the VM's disk file.
export const diskUsage = () => invoke<DiskUsage>("disk_usage");
// Frees a row's reclaimable space; the bytes freed.
export const reclaim = (kind: DiskRow["kind"]) => invoke<number>("reclaim", { kind });
