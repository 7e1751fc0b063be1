// Generated from app/src-tauri's Rust types by `cargo test -p berth-desktop`
// (src/bindings.rs); do not edit. BERTH_BLESS=1 on that test rewrites it.
import type { Settings, VmState, VmUsage } from "./settings";

export type EngineStatus = {
/**
 * `running` or `stopped`.
 */
state: "running" | "stopped",
/**
 * The engine's version, or why it cannot be reached.
 */
detail: string, dockerHost: string,
/**
 * Which engine answers: Berth's VM, an engine on this machine, or
 * nothing yet.
 */
kind: "vm" | "native" | "", };

export type PortLink = { label: string,
/**
 * `http://localhost:PORT` for TCP ports published on the host.
 */
url: string | null, };

export type ContainerRow = { id: string, name: string, image: string,
/**
 * `running`, `exited`, `paused`, `created`, …
 */
state: string,
/**
 * Docker's words: `Up 3 minutes`, `Exited (0) 2 seconds ago`.
 */
status: string, ports: Array<PortLink>,
/**
 * The Compose project (`com.docker.compose.project`), for grouping.
 */
project: string | null,
/**
 * Its service in that project (`com.docker.compose.service`).
 */
service: string | null,
/**
 * `starting`, `healthy` or `unhealthy` for a container with a health
 * check; none otherwise.
 */
health: "starting" | "healthy" | "unhealthy" | null, };

export type ImageRow = { id: string, tags: Array<string>, size: number, created: number,
/**
 * Names of the containers (running or not) created from it, as
 * `docker ps -a --filter ancestor=ID` lists them.
 */
usedBy: Array<string>, };

/**
 * The run form, as `docker run` takes it.
 */
export type RunForm = { image: string, name: string,
/**
 * `-p`-style specs.
 */
ports: Array<string>,
/**
 * `KEY=VALUE`.
 */
env: Array<string>,
/**
 * `-v`-style specs.
 */
volumes: Array<string>,
/**
 * A command line, split as a POSIX shell would (quotes kept together);
 * empty keeps the image's.
 */
command: string, };

export type LogLine = { stream: "stdout" | "stderr", text: string, };

/**
 * One line of pull progress, per layer.
 */
export type PullEvent = { id: string | null, status: string, current: number | null, total: number | null, };

export type VolumeRow = { name: string, driver: string, mountpoint: string,
/**
 * Names of the containers (running or not) that mount it.
 */
usedBy: Array<string>, };

export type NetworkRow = { id: string, name: string, driver: string, subnets: Array<string>,
/**
 * `bridge`, `host`, `none`: the engine's own, never removed.
 */
builtin: boolean, internal: boolean, };

/**
 * One sample of a container's usage, as `docker stats` computes it.
 */
export type StatsPoint = {
/**
 * Percent of one CPU (200 = two CPUs busy), from the delta to the previous sample.
 */
cpuPercent: number,
/**
 * Used memory without the page cache (`usage - inactive_file`), bytes.
 */
memory: number, memoryLimit: number, netRx: number, netTx: number,
/**
 * Bytes read from and written to block devices since the start, as
 * `docker stats`' BLOCK I/O (cgroup v2 says `read`, v1 `Read`).
 */
blockRead: number, blockWrite: number, };

export type SettingsView = { settings: Settings, path: string, };

/**
 * What the `docker` CLI in a new terminal talks to, and whether Berth set it up.
 */
export type DockerCli = {
/**
 * The CLI's current context (`default` when none is set).
 */
current: string,
/**
 * Where the `berth` context points, if there is one.
 */
berthContext: string | null,
/**
 * Whether Berth's integration (context, credential helper) is installed.
 */
installed: boolean,
/**
 * The engine this app talks to: what "use Berth" points the CLI at.
 */
engineHost: string,
/**
 * The CLI's config file.
 */
config: string, };

export type Troubleshoot = {
/**
 * The VM supervisor's published state, when it runs.
 */
vm: VmState | null,
/**
 * Guest memory, QEMU's RSS and the data disk's real size.
 */
usage: VmUsage,
/**
 * The last lines of the VM's console.
 */
console: string,
/**
 * What a reset to factory defaults deletes.
 */
resetDeletes: Array<string>, };

/**
 * A running container's CPU and memory, for the list.
 */
export type Usage = { id: string,
/**
 * `None` on the first look at a container: CPU needs two samples.
 */
cpuPercent: number | null, memory: number, };

/**
 * What the first-run flow shows once the tutorial runs.
 */
export type TutorialStarted = {
/**
 * The `docker run` a user would type for it.
 */
command: string, url: string,
/**
 * It was running already (or only needed a start).
 */
already: boolean, };

export type BuildStep = { name: string,
/**
 * Unix milliseconds.
 */
started: number | null, completed: number | null, cached: boolean, error: string | null,
/**
 * The step's output (its last 64 KiB); empty in the list.
 */
log: string, };

export type BuildRequest = { dockerfile: string, target: string | null,
/**
 * The arguments' names.
 */
buildArgs: Array<string>,
/**
 * Their values (an older engine kept names only).
 */
buildArgValues: { [key in string]: string }, labels: { [key in string]: string }, noCache: boolean, };

/**
 * Where a build's files came from, as buildx recorded it.
 */
export type BuildSource = {
/**
 * The context directory.
 */
context: string,
/**
 * The Dockerfile's path.
 */
dockerfile: string, };

export type Build = { id: string, name: string, status: "running" | "completed" | "failed", error: string | null,
/**
 * Unix milliseconds.
 */
created: number, completed: number | null, request: BuildRequest,
/**
 * The image it made (`sha256:…`).
 */
image: string | null, tags: Array<string>, totalSteps: number, cachedSteps: number, steps: Array<BuildStep>,
/**
 * Where its files came from, when buildx recorded it on this machine
 * (the detail only).
 */
source: BuildSource | null, };

export type DiskRow = { kind: "images" | "containers" | "volumes" | "buildCache", total: number,
/**
 * In use: images with containers, running containers, volumes mounted,
 * cache records in use.
 */
active: number, size: number,
/**
 * What its reclaim action frees.
 */
reclaimable: number,
/**
 * How many things that action removes.
 */
removable: number, };

export type DiskUsage = { rows: Array<DiskRow>,
/**
 * The VM's data disk file on the host (its real blocks) and the most it
 * can grow to, when the app's engine is the VM.
 */
vmDiskBytes: number | null, vmDiskLimitBytes: number | null, };
