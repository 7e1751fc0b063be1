//! The shim's I/O loop: container output (two pipes, or a PTY master) into the
//! json-file log, and attach clients' frames (stdin bytes, close, resize) into the
//! container. One `poll` loop in one thread, ending when the output reaches EOF.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::attach_proto::{Decoder, Frame};
use super::logfile::{log_line, RotatingLog};

struct Output {
    stream: &'static str,
    file: File,
    open: bool,
}

struct Client {
    sock: UnixStream,
    decoder: Decoder,
}

pub struct Pump {
    outputs: Vec<Output>,
    /// Where stdin frames go: the pipe's write end, or the PTY master.
    stdin: Option<File>,
    /// The PTY master, for resizes.
    master: Option<std::os::fd::RawFd>,
    listener: UnixListener,
    clients: Vec<Client>,
    log: RotatingLog,
}

/// How long (ms) a TTY's output may keep coming to be passed on as one chunk.
const TTY_FOLLOW_MS: u8 = 2;

/// Reads into `buf` what the TTY gives within [`TTY_FOLLOW_MS`] of the last read, so one
/// write by the program is passed on whole: the line discipline hands a line's text and
/// its translated "\r\n" over in two pushes, and a reader woken by the first would
/// send two chunks where dockerd's clients see one (docker-py's attach test counts
/// them). End of output is left for the next poll to find.
fn read_following(tty: &mut File, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        let mut fds = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
        let readable = matches!(poll(&mut fds, PollTimeout::from(TTY_FOLLOW_MS)), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if !readable {
            break;
        }
        match tty.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(m) => got += m,
        }
    }
    got
}

impl Pump {
    /// Output from two pipes (no TTY).
    pub fn pipes(
        out: OwnedFd,
        err: OwnedFd,
        stdin: Option<File>,
        listener: UnixListener,
        log: RotatingLog,
    ) -> Pump {
        Pump {
            outputs: vec![
                Output {
                    stream: "stdout",
                    file: File::from(out),
                    open: true,
                },
                Output {
                    stream: "stderr",
                    file: File::from(err),
                    open: true,
                },
            ],
            stdin,
            master: None,
            listener,
            clients: Vec::new(),
            log,
        }
    }

    /// Output and input through a PTY master (TTY: one stream, logged as stdout).
    pub fn pty(master: OwnedFd, listener: UnixListener, log: RotatingLog) -> io::Result<Pump> {
        let master = File::from(master);
        let raw = master.as_raw_fd();
        let input = master.try_clone()?;
        Ok(Pump {
            outputs: vec![Output {
                stream: "stdout",
                file: master,
                open: true,
            }],
            stdin: Some(input),
            master: Some(raw),
            listener,
            clients: Vec::new(),
            log,
        })
    }

    fn write_log(&mut self, stream: &str, data: &[u8]) -> io::Result<()> {
        // Whole lines become entries; a trailing partial line is written at once too, so
        // prompts without a newline reach attached clients immediately.
        let mut rest = data;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(rest.len());
            self.log.write_entry(&log_line(stream, &rest[..end]))?;
            rest = &rest[end..];
        }
        Ok(())
    }

    fn handle_frame(&mut self, f: Frame) {
        match f {
            Frame::Stdin(data) => {
                if let Some(s) = self.stdin.as_mut() {
                    if s.write_all(&data).is_err() {
                        self.stdin = None;
                    }
                }
            }
            Frame::CloseStdin => {
                // With a TTY the master is also the output: only drop our input handle.
                self.stdin = None;
            }
            Frame::Resize { rows, cols } => {
                if let Some(m) = self.master {
                    let ws = libc::winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ reads a winsize from the pointer we pass; `m` is
                    // the PTY master we own for the life of the pump.
                    unsafe {
                        libc::ioctl(m, libc::TIOCSWINSZ, &ws);
                    }
                }
            }
        }
    }

    /// Runs until every output source is closed.
    pub fn run(mut self) -> io::Result<()> {
        self.listener.set_nonblocking(true)?;
        let mut buf = vec![0u8; 32 * 1024];
        while self.outputs.iter().any(|o| o.open) {
            let n_out = self.outputs.iter().filter(|o| o.open).count();
            let (out_ready, listener_ready, client_ready) = {
                let mut fds: Vec<PollFd> = self
                    .outputs
                    .iter()
                    .filter(|o| o.open)
                    .map(|o| PollFd::new(o.file.as_fd(), PollFlags::POLLIN))
                    .collect();
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
                for c in &self.clients {
                    fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
                }
                let ready: Vec<bool> = fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
                (
                    ready[..n_out].to_vec(),
                    ready[n_out],
                    ready[n_out + 1..].to_vec(),
                )
            };
            let mut ri = out_ready.into_iter();
            let open_idx: Vec<usize> = (0..self.outputs.len())
                .filter(|i| self.outputs[*i].open)
                .collect();
            for i in open_idx {
                if !ri.next().unwrap_or(false) {
                    continue;
                }
                match self.outputs[i].file.read(&mut buf) {
                    Ok(0) => self.outputs[i].open = false,
                    Ok(mut n) => {
                        if self.master.is_some() {
                            n += read_following(&mut self.outputs[i].file, &mut buf[n..]);
                        }
                        let stream = self.outputs[i].stream;
                        let data = buf[..n].to_vec();
                        self.write_log(stream, &data)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // A PTY master reports EIO once every slave is closed: that is EOF.
                    Err(_) => self.outputs[i].open = false,
                }
            }
            if listener_ready {
                while let Ok((sock, _)) = self.listener.accept() {
                    let _ = sock.set_nonblocking(true);
                    self.clients.push(Client {
                        sock,
                        decoder: Decoder::default(),
                    });
                }
            }
            let mut frames = Vec::new();
            let mut gone = Vec::new();
            for (i, ready) in client_ready.into_iter().enumerate() {
                if !ready {
                    continue;
                }
                let c = &mut self.clients[i];
                match c.sock.read(&mut buf) {
                    Ok(0) => gone.push(i),
                    Ok(n) => {
                        c.decoder.push(&buf[..n]);
                        while let Some(f) = c.decoder.next_frame() {
                            match f {
                                Ok(f) => frames.push(f),
                                Err(_) => {
                                    gone.push(i);
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => gone.push(i),
                }
            }
            for f in frames {
                self.handle_frame(f);
            }
            gone.sort_unstable();
            gone.dedup();
            for i in gone.into_iter().rev() {
                self.clients.remove(i);
            }
        }
        Ok(())
    }
}
