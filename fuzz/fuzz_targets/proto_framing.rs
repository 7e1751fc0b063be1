//! The host↔guest protocol (`berth-proto`), fed what the other side could send:
//! bounded lines, control messages both ways, forward headers and UDP frames, the
//! yamux session of the serial transport (guest side and host side), and the
//! `berth.share=` kernel-command-line values.
//!
//! Input: the first byte picks the read buffer size (1..=64 bytes, so frames and lines
//! straddle reads); the rest is the byte stream.

#![no_main]

use std::time::Duration;

use berth_proto::control::{self, ControlError, GuestMsg, HostMsg};
use berth_proto::forward::{self, Request};
use berth_proto::lines::{self, MAX_LINE};
use berth_proto::mux::{self, MuxClient};
use berth_proto::shares::ShareMount;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, BufReader};

/// A session must end by itself once the peer's bytes run out; the clock is paused,
/// so waiting this long costs nothing unless something hangs.
const PATIENCE: Duration = Duration::from_secs(600);

async fn lines(cap: usize, data: &[u8]) {
    let mut r = BufReader::with_capacity(cap, data);
    // Until the end of the stream or the first error (too long, not UTF-8).
    while let Ok(Some(l)) = lines::read_line(&mut r).await {
        assert!(l.len() < MAX_LINE && !l.contains('\n'), "line {l:?}");
        if let Ok(req) = Request::parse(&l) {
            let again = Request::parse(req.line().trim_end()).expect("own header");
            assert_eq!(again, req);
        }
        if let Ok(m) = ShareMount::decode(&l) {
            assert_eq!(ShareMount::decode(&m.encode()).as_ref(), Ok(&m));
        }
    }
}

/// Each side's reader, over the other side's bytes; a message read must survive
/// being sent again.
async fn control_msgs<M>(cap: usize, data: &[u8])
where
    M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut r = BufReader::with_capacity(cap, data);
    loop {
        match control::recv::<_, M>(&mut r).await {
            Ok(Some(m)) => {
                let mut wire = Vec::new();
                control::send(&mut wire, &m).await.expect("send to a Vec");
                let again: Option<M> = control::recv(&mut BufReader::new(&wire[..]))
                    .await
                    .expect("its own message");
                assert_eq!(again.as_ref(), Some(&m));
            }
            // A malformed line is skipped; the stream goes on.
            Err(ControlError::Json(_)) => {}
            Ok(None) | Err(ControlError::Line(_)) => break,
        }
    }
}

async fn forward_stream(cap: usize, data: &[u8]) {
    let mut r = BufReader::with_capacity(cap, data);
    if forward::accept(&mut r).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    while let Ok(true) = forward::read_datagram(&mut r, &mut buf).await {
        assert!(buf.len() <= usize::from(u16::MAX));
    }
}

/// Guest side: a session from the host's bytes; every stream is drained.
async fn mux_guest(cap: usize, data: &[u8]) {
    let io = tokio::io::join(BufReader::with_capacity(cap, data), tokio::io::sink());
    let served = mux::serve(io, |_port, mut s| {
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = (&mut s).take(1 << 20).read_to_end(&mut sink).await;
        });
    });
    // A session error (garbage from the host) is an answer too; hanging is not.
    let _ = tokio::time::timeout(PATIENCE, served)
        .await
        .expect("the guest's session outlived the host's bytes");
}

/// Host side: a session from the guest's bytes; one stream to the API port is read.
async fn mux_host(cap: usize, data: &[u8]) {
    let io = tokio::io::join(
        BufReader::with_capacity(cap, std::io::Cursor::new(data.to_vec())),
        tokio::io::sink(),
    );
    let (client, task) = MuxClient::spawn(io);
    let read = async {
        if let Ok(mut s) = client.connect(berth_proto::API_PORT).await {
            let mut got = Vec::new();
            let _ = (&mut s).take(1 << 20).read_to_end(&mut got).await;
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("a stream outlived the guest's bytes");
    drop(client);
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the host's session outlived the guest's bytes")
        .expect("the session task panicked");
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let cap = usize::from(first % 64) + 1;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        lines(cap, data).await;
        control_msgs::<HostMsg>(cap, data).await;
        control_msgs::<GuestMsg>(cap, data).await;
        forward_stream(cap, data).await;
        mux_guest(cap, data).await;
        mux_host(cap, data).await;
    });
});
