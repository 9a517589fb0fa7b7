//! Streaming attach: the container's stdio is owned by its monitor (which outlives the
//! daemon), so attach connects to the monitor's control socket, asks for `attach`, and
//! bridges the client's streams to the monitor's frames ([`crate::monitor::attach`]).
//! The session ends when the container's output ends (the monitor closes the
//! connection) or when the client goes away; the container itself is never touched.

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::remotecommand::{Outcome, SessionIo};
use super::AttachTarget;
use crate::monitor::attach::{
    encode, FrameReader, FRAME_RESIZE, FRAME_STDERR, FRAME_STDIN, FRAME_STDIN_CLOSE, FRAME_STDOUT,
};

async fn connect(target: &AttachTarget) -> Result<BufReader<UnixStream>, String> {
    // Through `sockpath`, so a control socket path longer than a socket address allows
    // (a long `--state`) still connects.
    let socket = target.socket.clone();
    let connected = tokio::task::spawn_blocking(move || {
        let std_stream = crate::sockpath::connect(&socket)?;
        std_stream.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(std_stream)
    })
    .await
    .map_err(|e| format!("connecting to the monitor of {}: {e}", target.id))?
    .and_then(UnixStream::from_std);
    let mut stream =
        connected.map_err(|e| format!("connecting to the monitor of {}: {e}", target.id))?;
    stream
        .write_all(format!("{}\n", crate::monitor::ATTACH).as_bytes())
        .await
        .map_err(|e| format!("asking the monitor of {} to attach: {e}", target.id))?;
    let mut stream = BufReader::new(stream);
    let mut answer = String::new();
    stream
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("reading the monitor's answer: {e}"))?;
    if answer.trim_end() != "ok" {
        return Err(format!(
            "the monitor of {} refused to attach: {}",
            target.id,
            answer.trim_end()
        ));
    }
    Ok(stream)
}

/// Runs an attach session to its end.
pub async fn run(target: AttachTarget, io: SessionIo) -> Outcome {
    let stream = match connect(&target).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    let SessionIo {
        stdin,
        stdout,
        stderr,
        resize,
        cancel,
    } = io;
    let (mut read, mut write) = tokio::io::split(stream);
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let mut inputs = Vec::new();
    if let Some(mut rx) = stdin {
        let tx = frames_tx.clone();
        inputs.push(tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if tx.send(encode(FRAME_STDIN, &data)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(encode(FRAME_STDIN_CLOSE, &[])).await;
        }));
    }
    if let Some(mut rx) = resize {
        let tx = frames_tx.clone();
        inputs.push(tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                let mut data = size.width.to_be_bytes().to_vec();
                data.extend_from_slice(&size.height.to_be_bytes());
                if tx.send(encode(FRAME_RESIZE, &data)).await.is_err() {
                    return;
                }
            }
        }));
    }
    drop(frames_tx);
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames_rx.recv().await {
            if write.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let output = async {
        let mut reader = FrameReader::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let Ok(frames) = reader.push(&buf[..n]) else {
                return;
            };
            for (kind, data) in frames {
                let to = match kind {
                    FRAME_STDOUT => stdout.as_ref(),
                    FRAME_STDERR => stderr.as_ref(),
                    _ => None,
                };
                if let Some(to) = to {
                    if to.send(Bytes::from(data)).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let outcome = tokio::select! {
        _ = output => Outcome::Exited(0),
        _ = cancel.cancelled() => Outcome::Failed("the client went away".into()),
    };
    for t in inputs {
        t.abort();
    }
    writer.abort();
    outcome
}
