//! Packet framing: 3-byte little-endian length, 1-byte sequence id, payload.
//!
//! A payload of 0xFFFFFF bytes or more is split into 0xFFFFFF-byte frames, and
//! a payload whose length is an exact multiple of 0xFFFFFF ends with an empty
//! frame. The reader can hand out single frames (for relaying, so bytes are
//! copied once and never re-encoded) or whole payloads (for commands), and it
//! enforces a size limit while reading, before buffering an oversized packet.

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload of one frame.
pub const MAX_FRAME: usize = 0xFF_FFFF;

/// Smallest read from a socket.
const READ_CHUNK: usize = 4096;

/// Buffers grown beyond this (by a large packet) are released once empty.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Errors while reading packets.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("packet of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("packets out of order: expected sequence id {expected}, got {got}")]
    OutOfOrder { expected: u8, got: u8 },
}

/// One frame as read from the wire, header included.
#[derive(Debug)]
pub struct Frame {
    /// Header (4 bytes) + payload.
    pub bytes: BytesMut,
}

impl Frame {
    pub fn seq(&self) -> u8 {
        self.bytes[3]
    }
    pub fn payload(&self) -> &[u8] {
        &self.bytes[4..]
    }
    pub fn payload_len(&self) -> usize {
        self.bytes.len() - 4
    }
    /// A frame of MAX_FRAME bytes is followed by a continuation frame.
    pub fn continues(&self) -> bool {
        self.payload_len() == MAX_FRAME
    }
}

/// Buffered packet reader over any async byte stream.
pub struct PacketReader<R> {
    rd: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    pub fn new(rd: R) -> Self {
        // No buffer until the first read: idle connections cost no buffer memory.
        PacketReader { rd, buf: BytesMut::new() }
    }

    /// Bytes already received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    async fn fill(&mut self, need: usize) -> Result<(), PacketError> {
        while self.buf.len() < need {
            let want = need - self.buf.len();
            self.buf.reserve(want.max(READ_CHUNK));
            let n = self.rd.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(PacketError::Closed);
            }
        }
        Ok(())
    }

    /// Length (header included) of the next frame, if it is wholly buffered.
    /// The relay's fast path: no future, no split, when the bytes are already here.
    pub fn buffered_frame_len(&self) -> Option<usize> {
        let b = &self.buf;
        if b.len() < 4 {
            return None;
        }
        let len = 4 + (usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16);
        (b.len() >= len).then_some(len)
    }

    /// Wait until a whole frame is buffered; returns its length, header included.
    pub async fn fill_frame(&mut self) -> Result<usize, PacketError> {
        self.fill(4).await?;
        let len = 4 + (usize::from(self.buf[0]) | usize::from(self.buf[1]) << 8 | usize::from(self.buf[2]) << 16);
        self.fill(len).await?;
        Ok(len)
    }

    /// The buffered bytes, for reading or patching a frame in place.
    pub fn buffered_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..]
    }

    /// Drop the first `n` buffered bytes (a frame that was handled in place).
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
    }

    /// Read one frame (header + payload).
    pub async fn next_frame(&mut self) -> Result<Frame, PacketError> {
        let len = self.fill_frame().await?;
        Ok(Frame { bytes: self.buf.split_to(len) })
    }

    /// Read one whole payload, joining continuation frames, refusing more than
    /// `limit` bytes as soon as the headers show it. Returns (last sequence id, payload).
    pub async fn next_payload(&mut self, limit: usize) -> Result<(u8, BytesMut), PacketError> {
        let first = self.next_frame().await?;
        let mut seq = first.seq();
        if first.payload_len() > limit {
            return Err(PacketError::TooLarge { size: first.payload_len(), limit });
        }
        let mut cont = first.continues();
        let mut payload = first.bytes;
        payload.advance(4);
        while cont {
            self.fill(4).await?;
            let len = usize::from(self.buf[0]) | usize::from(self.buf[1]) << 8 | usize::from(self.buf[2]) << 16;
            let next_seq = self.buf[3];
            if next_seq != seq.wrapping_add(1) {
                return Err(PacketError::OutOfOrder { expected: seq.wrapping_add(1), got: next_seq });
            }
            if payload.len() + len > limit {
                return Err(PacketError::TooLarge { size: payload.len() + len, limit });
            }
            let frame = self.next_frame().await?;
            seq = frame.seq();
            cont = frame.continues();
            payload.extend_from_slice(frame.payload());
        }
        Ok((seq, payload))
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.rd
    }

    /// The stream and the bytes read from it but not yet consumed.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.rd, self.buf)
    }

    /// Release a large, now empty buffer (after a big packet), so an idle
    /// connection does not keep megabytes.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = BytesMut::new();
        }
    }
}

/// Buffered packet writer: packets accumulate in memory until `flush`.
pub struct PacketWriter<W> {
    wr: W,
    buf: BytesMut,
}

impl<W: AsyncWrite + Unpin> PacketWriter<W> {
    pub fn new(wr: W) -> Self {
        PacketWriter { wr, buf: BytesMut::new() }
    }

    /// Bytes waiting to be flushed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Append a payload as one packet (several frames if large), starting at
    /// sequence id `*seq`; `*seq` is advanced past the frames written.
    pub fn push(&mut self, seq: &mut u8, payload: &[u8]) {
        write_frames(&mut self.buf, seq, payload);
    }

    /// Append a payload built in place by `build`, avoiding a temporary buffer
    /// for the common case of a payload under one frame.
    pub fn push_with(&mut self, seq: &mut u8, build: impl FnOnce(&mut BytesMut)) {
        let start = self.buf.len();
        self.buf.put_slice(&[0, 0, 0, 0]);
        build(&mut self.buf);
        let len = self.buf.len() - start - 4;
        if len < MAX_FRAME {
            self.buf[start..start + 3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
            self.buf[start + 3] = *seq;
            *seq = seq.wrapping_add(1);
        } else {
            let payload = self.buf.split_off(start + 4);
            self.buf.truncate(start);
            write_frames(&mut self.buf, seq, &payload);
        }
    }

    /// Append a frame read elsewhere, with its sequence id replaced by `*seq`.
    pub fn push_frame(&mut self, seq: &mut u8, frame: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(frame);
        self.buf[start + 3] = *seq;
        *seq = seq.wrapping_add(1);
    }

    /// Write everything buffered.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.wr.write_all(&self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = BytesMut::new();
            }
        }
        Ok(())
    }

    /// Drop anything buffered but not yet flushed.
    pub fn discard(&mut self) {
        self.buf.clear();
    }

    /// The stream (pending bytes must have been flushed).
    pub fn into_inner(self) -> W {
        self.wr
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.wr
    }
}

/// Encode `payload` as frames into `out`.
pub fn write_frames(out: &mut BytesMut, seq: &mut u8, payload: &[u8]) {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_FRAME);
        out.reserve(4 + n);
        out.put_slice(&(n as u32).to_le_bytes()[..3]);
        out.put_u8(*seq);
        *seq = seq.wrapping_add(1);
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        if n < MAX_FRAME {
            break;
        }
    }
}
