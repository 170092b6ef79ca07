//! Codec tests without sockets: in-memory streams.

use bytes::BytesMut;

use super::handshake;
use super::packet::{write_frames, PacketError, PacketReader, PacketWriter, MAX_FRAME};
use super::response::{Event, ResponseScanner};
use super::wire::{self, OkInfo};

async fn roundtrip(len: usize) -> (Vec<u8>, u8, usize) {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let (a, b) = tokio::io::duplex(1 << 20);
    let writer = tokio::spawn(async move {
        let mut w = PacketWriter::new(a);
        let mut seq = 0;
        w.push(&mut seq, &payload);
        w.flush().await.unwrap();
        (payload, seq)
    });
    let mut r = PacketReader::new(b);
    let (last_seq, got) = r.next_payload(64 << 20).await.unwrap();
    let (payload, next_seq) = writer.await.unwrap();
    assert_eq!(got.as_ref(), payload.as_slice());
    assert_eq!(last_seq.wrapping_add(1), next_seq);
    (payload, next_seq, got.len())
}

#[tokio::test]
async fn small_and_empty_payloads_roundtrip() {
    assert_eq!(roundtrip(0).await.1, 1);
    assert_eq!(roundtrip(1).await.1, 1);
    assert_eq!(roundtrip(1000).await.1, 1);
}

#[tokio::test]
async fn payload_of_exactly_16mb_minus_1_ends_with_an_empty_frame() {
    // 0xFFFFFF bytes: one full frame plus an empty terminator (the case that
    // hangs clients of opensrv-mysql 0.7).
    let (_, frames, len) = roundtrip(MAX_FRAME).await;
    assert_eq!(frames, 2);
    assert_eq!(len, MAX_FRAME);
}

#[tokio::test]
async fn payloads_around_the_frame_boundary() {
    assert_eq!(roundtrip(MAX_FRAME - 1).await.1, 1);
    assert_eq!(roundtrip(MAX_FRAME + 1).await.1, 2);
    assert_eq!(roundtrip(2 * MAX_FRAME).await.1, 3);
}

#[test]
fn frames_are_split_at_16mb() {
    let mut out = BytesMut::new();
    let mut seq = 7;
    write_frames(&mut out, &mut seq, &vec![1u8; MAX_FRAME + 10]);
    assert_eq!(seq, 9);
    assert_eq!(&out[..4], &[0xFF, 0xFF, 0xFF, 7]);
    let second = 4 + MAX_FRAME;
    assert_eq!(&out[second..second + 4], &[10, 0, 0, 8]);
}

#[tokio::test]
async fn oversized_packet_is_refused_before_it_is_buffered() {
    let (a, b) = tokio::io::duplex(1024);
    tokio::spawn(async move {
        let mut w = PacketWriter::new(a);
        let mut seq = 0;
        // Only the header is needed to know it is too large.
        w.push(&mut seq, &vec![0u8; 5000]);
        let _ = w.flush().await;
    });
    let mut r = PacketReader::new(b);
    match r.next_payload(4096).await {
        Err(PacketError::TooLarge { size: 5000, limit: 4096 }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_multi_frame_packet_is_refused_on_the_continuation_header() {
    let (a, b) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let mut w = PacketWriter::new(a);
        let mut seq = 0;
        w.push(&mut seq, &vec![0u8; MAX_FRAME + 100]);
        let _ = w.flush().await;
    });
    let mut r = PacketReader::new(b);
    assert!(matches!(r.next_payload(MAX_FRAME + 50).await, Err(PacketError::TooLarge { .. })));
}

#[tokio::test]
async fn truncated_stream_is_closed_not_hung() {
    let (mut a, b) = tokio::io::duplex(64);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        a.write_all(&[10, 0, 0, 0, 1, 2]).await.unwrap(); // says 10 bytes, sends 2
    });
    let mut r = PacketReader::new(b);
    assert!(matches!(r.next_payload(1024).await, Err(PacketError::Closed)));
}

#[tokio::test]
async fn out_of_order_continuation_is_an_error() {
    let mut raw = BytesMut::new();
    let mut seq = 0;
    write_frames(&mut raw, &mut seq, &vec![0u8; MAX_FRAME + 1]);
    raw[4 + MAX_FRAME + 3] = 9; // corrupt the second frame's sequence id
    let (mut a, b) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = a.write_all(&raw).await;
    });
    let mut r = PacketReader::new(b);
    assert!(matches!(r.next_payload(64 << 20).await, Err(PacketError::OutOfOrder { expected: 1, got: 9 })));
}

#[test]
fn lenenc_roundtrip() {
    for v in [0u64, 1, 250, 251, 65535, 65536, (1 << 24) - 1, 1 << 24, u64::MAX] {
        let mut b = BytesMut::new();
        wire::put_lenenc_int(&mut b, v);
        let mut pos = 0;
        assert_eq!(wire::get_lenenc_int(&b, &mut pos), Some(v));
        assert_eq!(pos, b.len());
    }
    let mut pos = 0;
    assert_eq!(wire::get_lenenc_int(&[0xFC, 1], &mut pos), None, "truncated");
    assert_eq!(wire::get_lenenc_str(&[5, b'a'], &mut 0), None, "string shorter than its length");
}

#[test]
fn ok_and_err_roundtrip() {
    let ok = OkInfo { affected_rows: 300, last_insert_id: 70000, status: 0x0003, warnings: 2 };
    let mut b = BytesMut::new();
    wire::put_ok(&mut b, &ok, false, b"info");
    assert_eq!(wire::parse_ok(&b), Some(ok));
    let mut e = BytesMut::new();
    wire::put_err(&mut e, 4025, b"23000", "CONSTRAINT failed");
    let err = wire::parse_err(&e).unwrap();
    assert_eq!((err.code, &err.sqlstate, err.message.as_str()), (4025, b"23000", "CONSTRAINT failed"));
    assert_eq!(wire::parse_ok(&[0x00, 0xFC]), None, "malformed OK");
}

fn frames(parts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    parts.to_vec()
}

fn resultset(deprecate_eof: bool, more: bool) -> Vec<Vec<u8>> {
    let mut v = vec![vec![2u8], b"\x03defcol1".to_vec(), b"\x03defcol2".to_vec()];
    if !deprecate_eof {
        let mut b = BytesMut::new();
        wire::put_eof(&mut b, 0, 2);
        v.push(b.to_vec());
    }
    v.push(vec![1, b'a', 0xFB]);
    v.push(vec![1, b'b', 1, b'c']);
    let status = if more { 0x0A } else { 0x02 };
    let mut end = BytesMut::new();
    if deprecate_eof {
        wire::put_ok(&mut end, &OkInfo { status, ..OkInfo::default() }, true, b"");
    } else {
        wire::put_eof(&mut end, 1, status);
    }
    v.push(end.to_vec());
    frames(&v)
}

#[test]
fn scanner_follows_result_sets_in_both_eof_styles() {
    for deprecate in [false, true] {
        let mut s = ResponseScanner::query(deprecate);
        let events: Vec<Event> = resultset(deprecate, false).iter().map(|f| s.feed(f).unwrap()).collect();
        assert!(s.done());
        assert_eq!(events.iter().filter(|e| **e == Event::Row).count(), 2);
        assert!(matches!(events.last(), Some(Event::ResultEnd(_))));
    }
}

#[test]
fn scanner_follows_multi_result_sets() {
    for deprecate in [false, true] {
        let mut s = ResponseScanner::query(deprecate);
        for f in resultset(deprecate, true) {
            s.feed(&f).unwrap();
        }
        assert!(!s.done(), "MORE_RESULTS_EXISTS keeps the response open");
        let mut ok = BytesMut::new();
        wire::put_ok(&mut ok, &OkInfo { status: 2, ..OkInfo::default() }, false, b"");
        assert!(matches!(s.feed(&ok).unwrap(), Event::Ok(_)));
        assert!(s.done());
    }
}

#[test]
fn scanner_treats_large_rows_starting_with_0xfe_as_rows() {
    let mut s = ResponseScanner::query(true);
    s.feed(&[1]).unwrap();
    s.feed(b"\x03def").unwrap();
    let mut big = vec![0u8; MAX_FRAME];
    big[0] = 0xFE; // lenenc 8-byte length of a 16 MiB+ cell
    assert_eq!(s.feed(&big).unwrap(), Event::Row);
    assert_eq!(s.feed(&[0xFE; 10]).unwrap(), Event::Continuation, "the rest of the big row");
    let mut end = BytesMut::new();
    wire::put_ok(&mut end, &OkInfo::default(), true, b"");
    assert!(matches!(s.feed(&end).unwrap(), Event::ResultEnd(_)));
    assert!(s.done());
}

#[test]
fn scanner_rejects_garbage() {
    let mut s = ResponseScanner::query(true);
    assert!(s.feed(&[]).is_err());
    let mut s = ResponseScanner::query(true);
    assert!(s.feed(&[0xFB, b'f']).is_err(), "LOCAL INFILE request is refused");
    let mut s = ResponseScanner::query(true);
    let mut ok = BytesMut::new();
    wire::put_ok(&mut ok, &OkInfo::default(), false, b"");
    s.feed(&ok).unwrap();
    assert!(s.feed(&ok).is_err(), "data after the end");
}

#[test]
fn native_password_verification() {
    let salt = handshake::new_salt();
    assert!(salt.iter().all(|b| (0x21..0x7F).contains(b)), "printable salt, no NUL");
    let stage2 = handshake::stage2_hash(b"app");
    let scramble = mysql_common::scramble::scramble_native(&salt, b"app").unwrap();
    assert!(handshake::verify_native(&salt, &scramble, &stage2));
    let wrong = mysql_common::scramble::scramble_native(&salt, b"wrong").unwrap();
    assert!(!handshake::verify_native(&salt, &wrong, &stage2));
    assert!(!handshake::verify_native(&salt, &[], &stage2), "empty response needs an empty password");
    assert!(handshake::verify_native(&salt, &[], &handshake::stage2_hash(b"")));
    assert!(!handshake::verify_native(&salt, &scramble[..19], &stage2));
}

#[test]
fn salts_differ_per_connection() {
    assert_ne!(handshake::new_salt(), handshake::new_salt());
}

#[test]
fn malformed_client_hello_is_an_error_not_a_panic() {
    for bad in [&b""[..], &[0xFF; 3], &[0x05, 0xA2, 0, 0], &[0x05, 0xA2, 0x0A, 0, 0, 0, 0, 1, 33]] {
        let _ = handshake::parse_client_hello(bad);
    }
    assert!(handshake::parse_client_hello(&[0x00, 0x02, 0, 0]).is_err(), "no PROTOCOL_41");
}

#[test]
fn server_handshake_parses_back() {
    let salt = handshake::new_salt();
    let hs =
        handshake::server_handshake(42, &salt, "10.11.19-MariaDB-shardgate", 45, handshake::NATIVE_PASSWORD, false);
    let parsed = handshake::parse_server_hello(&hs).unwrap();
    assert_eq!(parsed.connection_id, 42);
    assert_eq!(parsed.nonce, salt.to_vec());
    assert_eq!(parsed.auth_plugin, "mysql_native_password");
    assert_eq!(parsed.version, "10.11.19-MariaDB-shardgate");
}

#[test]
fn caching_sha2_scrambles_verify_against_the_double_sha256() {
    let salt = handshake::new_salt();
    let stage2 = handshake::sha256_stage2(b"app");
    let good = mysql_common::scramble::scramble_sha256(&salt, b"app").unwrap();
    assert!(handshake::verify_caching_sha2(&salt, &good, &stage2));
    let wrong = mysql_common::scramble::scramble_sha256(&salt, b"apq").unwrap();
    assert!(!handshake::verify_caching_sha2(&salt, &wrong, &stage2));
    let other_salt = handshake::new_salt();
    assert!(!handshake::verify_caching_sha2(&other_salt, &good, &stage2), "the nonce is part of the proof");
    assert!(!handshake::verify_caching_sha2(&salt, &good[..20], &stage2));
    assert!(!handshake::verify_caching_sha2(&salt, &[], &stage2), "empty only for an empty password");
    assert!(handshake::verify_caching_sha2(&salt, &[], &handshake::sha256_stage2(b"")));
}
