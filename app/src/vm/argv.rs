//! The QEMU command line as data: a [`MachineSpec`] says what the VM is, and
//! [`MachineSpec::argv`] turns it into arguments for the host OS and
//! accelerator. Tests check every OS's argv here, on Linux.

use std::path::PathBuf;

use crate::paths::HostOs;
use crate::settings::Accel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn current() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// A host-side endpoint QEMU opens: a unix socket, or on Windows a named pipe
/// (QEMU's `pipe` chardev), since there is no AF_UNIX path every QEMU build there takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Pipe(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Pipe(name) => f.write_str(&crate::os::pipe_path(name)),
        }
    }
}

impl Endpoint {
    /// The serial transport's pipe to this endpoint.
    pub fn serial_pipe(&self) -> crate::transport::Pipe {
        match self {
            Endpoint::Unix(p) => crate::transport::Pipe::Serial(p.clone()),
            Endpoint::Pipe(name) => crate::transport::Pipe::NamedPipe(name.clone()),
        }
    }

    /// A synchronous connection (QMP's short sessions).
    pub fn connect(&self) -> std::io::Result<crate::os::LocalStream> {
        match self {
            Endpoint::Unix(p) => crate::os::connect_unix(p),
            Endpoint::Pipe(name) => crate::os::connect_pipe(name),
        }
    }

    fn chardev(&self, id: &str) -> String {
        match self {
            Endpoint::Unix(p) => {
                format!("socket,id={id},path={},server=on,wait=off", opt(p))
            }
            Endpoint::Pipe(name) => format!("pipe,id={id},path={name}"),
        }
    }
}

/// The guest's end of the host↔guest transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportDevice {
    /// Kernel vhost-vsock (`/dev/vhost-vsock` on a Linux host).
    VhostVsock { cid: u32 },
    /// vhost-user-vsock served by `vhost-device-vsock` on `socket`; needs shared
    /// guest memory.
    Hybrid { socket: PathBuf },
    /// One virtio-serial port carrying the yamux session.
    Serial { endpoint: Endpoint },
}

/// A shared folder's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareDevice {
    /// vhost-user-fs served by `virtiofsd` on `socket`; needs shared guest memory.
    Virtiofs { tag: String, socket: PathBuf },
    /// QEMU's own 9p server on `path`. `security_model=none`: files are created
    /// as the user QEMU runs as, which is what "owned by me on the host" means.
    NineP {
        tag: String,
        path: PathBuf,
        read_only: bool,
    },
}

/// The balloon device's id: QOM path `/machine/peripheral/<id>`.
pub const BALLOON_ID: &str = "balloon";

/// A path inside a QEMU option string, where a comma must be doubled.
fn opt(p: &std::path::Path) -> String {
    p.display().to_string().replace(',', ",,")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    pub os: HostOs,
    pub arch: Arch,
    /// Resolved: never [`Accel::Auto`].
    pub accel: Accel,
    pub cpus: u32,
    pub memory_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub data_disk: PathBuf,
    pub qmp: Endpoint,
    pub console_log: PathBuf,
    pub pidfile: PathBuf,
    pub transport: TransportDevice,
    /// Firmware instead of QEMU's default SeaBIOS: qboot boots a Linux kernel
    /// directly and saves about a second under TCG.
    pub firmware: Option<PathBuf>,
    pub shares: Vec<ShareDevice>,
}

impl MachineSpec {
    pub fn binary(&self) -> String {
        let base = match self.arch {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        };
        match self.os {
            HostOs::Windows => format!("{base}.exe"),
            _ => base.to_string(),
        }
    }

    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |args: &[&str]| a.extend(args.iter().map(|s| s.to_string()));
        // Nothing QEMU would add on its own: every device below is one we chose.
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        // A guest reboot (panic=-1) ends QEMU, so the manager sees the crash.
        push(&["-no-reboot"]);
        let machine = match self.arch {
            Arch::X86_64 => "q35",
            Arch::Aarch64 => "virt,highmem=on",
        };
        push(&["-machine", machine]);
        if let Some(fw) = &self.firmware {
            push(&["-bios", &fw.display().to_string()]);
        }
        let accel = match (self.accel, self.os) {
            (Accel::Hvf, _) => "hvf".to_string(),
            // QEMU's WHPX cannot emulate the in-kernel irqchip on older Windows builds.
            (Accel::Whpx, _) => "whpx,kernel-irqchip=off".to_string(),
            (Accel::Kvm, _) => "kvm".to_string(),
            // One host thread runs every vCPU in turn. With a thread per vCPU
            // (MTTCG), guests here wedged in soft lockups (two vCPUs spinning
            // on int3 in kmem_cache_alloc after a container start: code being
            // patched on one vCPU while another runs it), about one boot in
            // five with two VMs on two cores; round-robin never did, and was
            // faster on a busy host.
            (Accel::Tcg | Accel::Auto, _) => "tcg,thread=single".to_string(),
        };
        push(&["-accel", &accel]);
        let cpu = match self.accel {
            Accel::Hvf | Accel::Kvm => "host",
            Accel::Whpx | Accel::Tcg | Accel::Auto => "max",
        };
        push(&["-cpu", cpu]);
        push(&["-smp", &self.cpus.to_string()]);
        let mem = format!("{}M", self.memory_mib);
        let vhost_user = matches!(self.transport, TransportDevice::Hybrid { .. })
            || self
                .shares
                .iter()
                .any(|s| matches!(s, ShareDevice::Virtiofs { .. }));
        match vhost_user {
            // vhost-user backends map guest memory, so it must be a shared memfd.
            true => push(&[
                "-m",
                &mem,
                "-object",
                &format!("memory-backend-memfd,id=mem,size={mem},share=on"),
                "-numa",
                "node,memdev=mem",
            ]),
            false => push(&["-m", &mem]),
        }
        push(&[
            "-kernel",
            &self.kernel.display().to_string(),
            "-initrd",
            &self.initrd.display().to_string(),
            "-append",
            &self.cmdline,
        ]);
        push(&[
            "-drive",
            &format!(
                "if=none,id=data,file={},format=qcow2,cache=writeback,discard=unmap",
                opt(&self.data_disk)
            ),
            "-device",
            "virtio-blk-pci,drive=data",
        ]);
        // User-mode networking: the guest reaches the host as 10.0.2.2
        // (host.docker.internal) with no privileges or host setup.
        push(&[
            "-netdev",
            "user,id=net0",
            "-device",
            "virtio-net-pci,netdev=net0",
            "-device",
            "virtio-rng-pci",
        ]);
        // Memory back to the host: the guest reports free pages and QEMU
        // discards them, so what containers used is not held after they go.
        // Its statistics (`guest-stats`) give `berth vm status` the guest's view.
        push(&[
            "-device",
            &format!("virtio-balloon-pci,id={BALLOON_ID},free-page-reporting=on"),
        ]);
        push(&[
            "-chardev",
            &format!("file,id=console,path={},append=on", opt(&self.console_log)),
            "-serial",
            "chardev:console",
        ]);
        push(&[
            "-chardev",
            &self.qmp.chardev("qmp"),
            "-mon",
            "chardev=qmp,mode=control",
        ]);
        match &self.transport {
            TransportDevice::VhostVsock { cid } => {
                push(&["-device", &format!("vhost-vsock-pci,guest-cid={cid}")])
            }
            TransportDevice::Hybrid { socket } => push(&[
                "-chardev",
                &format!("socket,id=vsock,path={}", opt(socket)),
                "-device",
                "vhost-user-vsock-pci,chardev=vsock",
            ]),
            TransportDevice::Serial { endpoint } => push(&[
                "-device",
                "virtio-serial-pci,id=vser",
                "-chardev",
                &endpoint.chardev("mux"),
                "-device",
                &format!(
                    "virtserialport,bus=vser.0,chardev=mux,name={}",
                    berth_proto::SERIAL_PORT_NAME
                ),
            ]),
        }
        for (i, share) in self.shares.iter().enumerate() {
            match share {
                ShareDevice::Virtiofs { tag, socket } => push(&[
                    "-chardev",
                    &format!("socket,id=fs{i},path={}", opt(socket)),
                    "-device",
                    &format!("vhost-user-fs-pci,chardev=fs{i},tag={tag}"),
                ]),
                ShareDevice::NineP {
                    tag,
                    path,
                    read_only,
                } => push(&[
                    "-fsdev",
                    &format!(
                        "local,id=fs{i},path={},security_model=none{}",
                        opt(path),
                        if *read_only { ",readonly=on" } else { "" }
                    ),
                    "-device",
                    &format!("virtio-9p-pci,fsdev=fs{i},mount_tag={tag}"),
                ]),
            }
        }
        push(&["-pidfile", &self.pidfile.display().to_string()]);
        a
    }
}

/// The kernel command line the guest's init reads (see `vm-image/README.md`).
pub fn cmdline(
    os: HostOs,
    arch: Arch,
    transport: &TransportDevice,
    insecure: &[String],
    shares: &[berth_proto::shares::ShareMount],
    debug: bool,
) -> String {
    let console = match arch {
        Arch::X86_64 => "ttyS0",
        Arch::Aarch64 => "ttyAMA0",
    };
    let link = match transport {
        TransportDevice::Serial { .. } => "serial",
        _ => "vsock",
    };
    // Warnings and worse reach the console (a soft lockup's backtrace is a
    // warning); debug keeps everything the kernel says.
    let level = if debug { "" } else { " loglevel=5" };
    let mut c = format!("console={console} panic=-1{level} berth.transport={link}");
    if !insecure.is_empty() {
        c.push_str(&format!(" berth.insecure={}", insecure.join(",")));
    }
    c.push_str(&format!(" berth.hostos={}", os.name()));
    for s in shares {
        c.push_str(&format!(" berth.share={}", s.encode()));
    }
    if debug {
        c.push_str(" berth.debug=1");
    }
    c
}

/// Picks the accelerator for `Auto`: the OS's hypervisor, or TCG where there is
/// none (`kvm_usable` is probed by the caller, as it needs the device).
pub fn resolve_accel(wanted: Accel, os: HostOs, kvm_usable: bool) -> Accel {
    match (wanted, os) {
        (Accel::Auto, HostOs::MacOs) => Accel::Hvf,
        (Accel::Auto, HostOs::Windows) => Accel::Whpx,
        (Accel::Auto, HostOs::Linux) if kvm_usable => Accel::Kvm,
        (Accel::Auto, HostOs::Linux) => Accel::Tcg,
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(os: HostOs, arch: Arch, accel: Accel, transport: TransportDevice) -> MachineSpec {
        MachineSpec {
            os,
            arch,
            accel,
            cpus: 2,
            memory_mib: 1024,
            kernel: "/img/vmlinuz".into(),
            initrd: "/img/initramfs.img".into(),
            cmdline: cmdline(os, arch, &transport, &[], &[], false),
            data_disk: "/vm/data.qcow2".into(),
            qmp: match os {
                HostOs::Windows => Endpoint::Pipe("berth-qmp".into()),
                _ => Endpoint::Unix("/vm/qmp.sock".into()),
            },
            console_log: "/vm/console.log".into(),
            pidfile: "/vm/qemu.pid".into(),
            transport,
            firmware: None,
            shares: Vec::new(),
        }
    }

    fn after<'a>(argv: &'a [String], flag: &str) -> Vec<&'a str> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn macos_hvf_on_apple_silicon_uses_the_serial_mux() {
        let s = spec(
            HostOs::MacOs,
            Arch::Aarch64,
            Accel::Hvf,
            TransportDevice::Serial {
                endpoint: Endpoint::Unix("/vm/mux.sock".into()),
            },
        );
        let a = s.argv();
        assert_eq!(s.binary(), "qemu-system-aarch64");
        assert_eq!(after(&a, "-machine"), ["virt,highmem=on"]);
        assert_eq!(after(&a, "-accel"), ["hvf"]);
        assert_eq!(after(&a, "-cpu"), ["host"]);
        assert_eq!(after(&a, "-m"), ["1024M"]);
        assert!(after(&a, "-append")[0].starts_with("console=ttyAMA0 "));
        assert!(after(&a, "-append")[0].contains("berth.transport=serial"));
        assert!(
            after(&a, "-chardev").contains(&"socket,id=mux,path=/vm/mux.sock,server=on,wait=off")
        );
        assert!(after(&a, "-device")
            .contains(&"virtserialport,bus=vser.0,chardev=mux,name=org.berth.mux"));
        assert!(after(&a, "-object").is_empty(), "no memfd on macOS");
    }

    #[test]
    fn windows_whpx_uses_named_pipes() {
        let s = spec(
            HostOs::Windows,
            Arch::X86_64,
            Accel::Whpx,
            TransportDevice::Serial {
                endpoint: Endpoint::Pipe("berth-mux".into()),
            },
        );
        let a = s.argv();
        assert_eq!(s.binary(), "qemu-system-x86_64.exe");
        assert_eq!(after(&a, "-accel"), ["whpx,kernel-irqchip=off"]);
        assert_eq!(after(&a, "-cpu"), ["max"]);
        let chardevs = after(&a, "-chardev");
        assert!(chardevs.contains(&"pipe,id=qmp,path=berth-qmp"));
        assert!(chardevs.contains(&"pipe,id=mux,path=berth-mux"));
        assert_eq!(after(&a, "-mon"), ["chardev=qmp,mode=control"]);
    }

    #[test]
    fn linux_kvm_with_kernel_vhost_vsock() {
        let s = spec(
            HostOs::Linux,
            Arch::X86_64,
            Accel::Kvm,
            TransportDevice::VhostVsock { cid: 42 },
        );
        let a = s.argv();
        assert_eq!(after(&a, "-machine"), ["q35"]);
        assert_eq!(after(&a, "-accel"), ["kvm"]);
        assert_eq!(after(&a, "-cpu"), ["host"]);
        assert!(after(&a, "-device").contains(&"vhost-vsock-pci,guest-cid=42"));
        assert!(after(&a, "-append")[0].contains("berth.transport=vsock"));
    }

    #[test]
    fn linux_tcg_with_hybrid_vsock_shares_memory() {
        let s = spec(
            HostOs::Linux,
            Arch::X86_64,
            Accel::Tcg,
            TransportDevice::Hybrid {
                socket: "/vm/vhost.sock".into(),
            },
        );
        let a = s.argv();
        assert_eq!(after(&a, "-accel"), ["tcg,thread=single"]);
        assert_eq!(after(&a, "-cpu"), ["max"]);
        assert_eq!(
            after(&a, "-object"),
            ["memory-backend-memfd,id=mem,size=1024M,share=on"]
        );
        assert_eq!(after(&a, "-numa"), ["node,memdev=mem"]);
        assert!(after(&a, "-device").contains(&"vhost-user-vsock-pci,chardev=vsock"));
        assert_eq!(after(&a, "-kernel"), ["/img/vmlinuz"]);
        assert_eq!(after(&a, "-initrd"), ["/img/initramfs.img"]);
        assert!(
            after(&a, "-drive")[0].starts_with("if=none,id=data,file=/vm/data.qcow2,format=qcow2")
        );
        assert!(a.contains(&"-no-reboot".to_string()));
        assert!(
            after(&a, "-device").contains(&"virtio-balloon-pci,id=balloon,free-page-reporting=on")
        );
        assert!(after(&a, "-bios").is_empty());
        let with_qboot = MachineSpec {
            firmware: Some("/usr/share/qemu/qboot.rom".into()),
            ..s
        };
        assert_eq!(
            after(&with_qboot.argv(), "-bios"),
            ["/usr/share/qemu/qboot.rom"]
        );
    }

    #[test]
    fn auto_accel_per_os() {
        assert_eq!(resolve_accel(Accel::Auto, HostOs::MacOs, false), Accel::Hvf);
        assert_eq!(
            resolve_accel(Accel::Auto, HostOs::Windows, false),
            Accel::Whpx
        );
        assert_eq!(resolve_accel(Accel::Auto, HostOs::Linux, true), Accel::Kvm);
        assert_eq!(resolve_accel(Accel::Auto, HostOs::Linux, false), Accel::Tcg);
        assert_eq!(resolve_accel(Accel::Tcg, HostOs::Linux, true), Accel::Tcg);
    }

    #[test]
    fn insecure_registries_reach_the_guest() {
        let c = cmdline(
            HostOs::Linux,
            Arch::X86_64,
            &TransportDevice::VhostVsock { cid: 3 },
            &["10.0.2.2:5000".into(), "reg:80".into()],
            &[],
            false,
        );
        assert!(c.contains(" berth.insecure=10.0.2.2:5000,reg:80"), "{c}");
        assert!(c.ends_with(" berth.hostos=linux"), "{c}");
    }

    #[test]
    fn shares_per_backend_and_their_command_line() {
        use berth_proto::shares::{ShareFs, ShareMount};
        let mut s = spec(
            HostOs::MacOs,
            Arch::Aarch64,
            Accel::Hvf,
            TransportDevice::Serial {
                endpoint: Endpoint::Unix("/vm/mux.sock".into()),
            },
        );
        s.shares = vec![ShareDevice::NineP {
            tag: "berth0".into(),
            path: "/Users/me, too".into(),
            read_only: true,
        }];
        let a = s.argv();
        assert_eq!(
            after(&a, "-fsdev"),
            ["local,id=fs0,path=/Users/me,, too,security_model=none,readonly=on"]
        );
        assert!(after(&a, "-device").contains(&"virtio-9p-pci,fsdev=fs0,mount_tag=berth0"));
        assert!(after(&a, "-object").is_empty(), "9p needs no shared memory");

        let mut s = spec(
            HostOs::Linux,
            Arch::X86_64,
            Accel::Tcg,
            TransportDevice::VhostVsock { cid: 9 },
        );
        s.shares = vec![ShareDevice::Virtiofs {
            tag: "berth0".into(),
            socket: "/vm/fs0.sock".into(),
        }];
        let a = s.argv();
        assert!(after(&a, "-chardev").contains(&"socket,id=fs0,path=/vm/fs0.sock"));
        assert!(after(&a, "-device").contains(&"vhost-user-fs-pci,chardev=fs0,tag=berth0"));
        assert_eq!(
            after(&a, "-object"),
            ["memory-backend-memfd,id=mem,size=1024M,share=on"],
            "virtiofsd maps guest memory"
        );

        let c = cmdline(
            HostOs::Windows,
            Arch::X86_64,
            &TransportDevice::VhostVsock { cid: 3 },
            &[],
            &[ShareMount {
                tag: "berth0".into(),
                fs: ShareFs::NineP,
                read_only: false,
                guest_path: "/run/desktop/mnt/host/c/Users".into(),
            }],
            false,
        );
        assert!(
            c.ends_with(
                " berth.hostos=windows berth.share=berth0,9p,rw,/run/desktop/mnt/host/c/Users"
            ),
            "{c}"
        );
    }
}
