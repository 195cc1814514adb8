//! Any datagram through decode, the answer function and encode: no panic, and every
//! reply decodes as a response with the request's id.
#![no_main]

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use std::time::Instant;
use weft_dns::forward::Transport;
use weft_dns::resolve::Handled;
use weft_dns::{fixture, Config, Dns};

static DNS: LazyLock<Arc<Dns>> = LazyLock::new(|| {
    let dns = Dns::new(Config::new("cluster.local", vec![]));
    dns.update_zone(|z| *z = fixture::synced_zone(&fixture::conformance()));
    dns
});

fuzz_target!(|data: &[u8]| {
    for t in [Transport::Udp, Transport::Tcp] {
        if let Handled::Reply(b) = DNS.handle_bytes(data, t, Instant::now()) {
            let m = Message::from_vec(&b).expect("our reply decodes");
            assert_eq!(m.id, u16::from_be_bytes([data[0], data[1]]));
            assert!(b[2] & 0x80 != 0, "QR set");
        }
    }
});
