//! Bytes ↔ messages: decoding requests (malformed input gets FORMERR or is dropped,
//! never a panic) and encoding responses within the client's size limit (EDNS0 payload
//! size, 512 without EDNS), truncating with TC when the answer does not fit.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};

/// Our advertised EDNS UDP payload size (DNS flag day 2020).
pub const OUR_PAYLOAD: u16 = 1232;
/// The largest UDP response we send, whatever the client advertises.
pub const MAX_UDP: usize = 65_000;
pub const MAX_TCP: usize = 65_535;

#[derive(Debug)]
pub enum Request {
    /// A well-formed query with exactly one question.
    Query(Box<Message>),
    /// Answer at once with this (FORMERR, NOTIMP, BADVERS): already a response.
    Error(Box<Message>),
    /// Not worth an answer (too short to carry an id, or itself a response).
    Drop,
}

/// Decodes a request.
pub fn parse(buf: &[u8]) -> Request {
    if buf.len() < 12 {
        return Request::Drop;
    }
    // The QR bit: never answer a response (no loops between servers).
    if buf[2] & 0x80 != 0 {
        return Request::Drop;
    }
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    let op = OpCode::from_u8((buf[2] >> 3) & 0x0f);
    let msg = match Message::from_vec(buf) {
        Ok(m) => m,
        Err(_) => return Request::Error(Box::new(error(id, op, ResponseCode::FormErr, None))),
    };
    if msg.op_code != OpCode::Query {
        return Request::Error(Box::new(error(id, msg.op_code, ResponseCode::NotImp, Some(&msg))));
    }
    if msg.queries.len() != 1 || !msg.answers.is_empty() {
        return Request::Error(Box::new(error(id, op, ResponseCode::FormErr, Some(&msg))));
    }
    if let Some(e) = &msg.edns {
        if e.version() > 0 {
            let mut r = error(id, op, ResponseCode::BADVERS, Some(&msg));
            r.edns = Some(our_edns());
            return Request::Error(Box::new(r));
        }
    }
    Request::Query(Box::new(msg))
}

fn error(id: u16, op: OpCode, rcode: ResponseCode, req: Option<&Message>) -> Message {
    let mut m = Message::error_msg(id, op, rcode);
    if let Some(req) = req {
        m.metadata.recursion_desired = req.recursion_desired;
        if req.queries.len() == 1 {
            m.queries = req.queries.clone();
        }
    }
    m
}

fn our_edns() -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(OUR_PAYLOAD);
    e
}

/// An empty response to `req` (question copied, RD echoed, RA set, EDNS if asked).
pub fn response_to(req: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::response(req.id, req.op_code);
    m.metadata.recursion_desired = req.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.checking_disabled = req.checking_disabled;
    m.metadata.response_code = rcode;
    m.queries = req.queries.clone();
    if req.edns.is_some() {
        m.edns = Some(our_edns());
    }
    m
}

/// The size limit for a UDP answer to `req`.
pub fn udp_limit(req: &Message) -> usize {
    match &req.edns {
        Some(e) => (e.max_payload() as usize).clamp(512, MAX_UDP),
        None => 512,
    }
}

/// The question of a request (parse guarantees exactly one).
pub fn question(req: &Message) -> &Query {
    &req.queries[0]
}

/// Encodes `msg` in at most `limit` bytes: first whole, then without the additional
/// section (RFC 2181 9: no TC for that), then as an empty answer with TC set.
pub fn encode(msg: &Message, limit: usize) -> Vec<u8> {
    if let Ok(b) = msg.to_vec() {
        if b.len() <= limit {
            return b;
        }
    }
    if !msg.additionals.is_empty() {
        let mut m = msg.clone();
        m.additionals.clear();
        if let Ok(b) = m.to_vec() {
            if b.len() <= limit {
                return b;
            }
        }
    }
    let mut m = msg.clone();
    m.answers.clear();
    m.authorities.clear();
    m.additionals.clear();
    m.metadata.truncation = true;
    match m.to_vec() {
        Ok(b) if b.len() <= limit => b,
        // The question itself does not fit (a 255-byte name in 512 bytes cannot happen,
        // but a message we cannot encode must still get an answer): header only.
        _ => {
            let mut h = Message::error_msg(msg.id, msg.op_code, ResponseCode::ServFail);
            h.metadata.message_type = MessageType::Response;
            h.to_vec().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::net::Ipv4Addr;

    fn query(name: &str, edns: Option<u16>) -> Message {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if let Some(p) = edns {
            let mut e = Edns::new();
            e.set_max_payload(p);
            m.edns = Some(e);
        }
        m
    }

    #[test]
    fn short_input_and_responses_are_dropped() {
        assert!(matches!(parse(&[0u8; 11]), Request::Drop));
        let mut r = query("a.", None);
        r.metadata.message_type = MessageType::Response;
        assert!(matches!(parse(&r.to_vec().unwrap()), Request::Drop));
    }

    #[test]
    fn garbage_after_a_header_gets_formerr_with_the_id() {
        let mut b = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0xc0, 0xff]);
        match parse(&b) {
            Request::Error(m) => assert_eq!((m.id, m.response_code), (0x1234, ResponseCode::FormErr)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_questions_are_formerr_and_updates_notimp() {
        let mut m = query("a.", None);
        m.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        assert!(matches!(parse(&m.to_vec().unwrap()), Request::Error(e) if e.response_code == ResponseCode::FormErr));
        let mut m = query("a.", None);
        m.metadata.op_code = OpCode::Update;
        assert!(matches!(parse(&m.to_vec().unwrap()), Request::Error(e) if e.response_code == ResponseCode::NotImp));
    }

    #[test]
    fn edns_version_1_is_badvers() {
        let mut m = query("a.", Some(1232));
        m.edns.as_mut().unwrap().set_version(1);
        match parse(&m.to_vec().unwrap()) {
            Request::Error(e) => {
                let back = Message::from_vec(&e.to_vec().unwrap()).unwrap();
                // 16 reads back as BADSIG, which shares BADVERS's number.
                assert_eq!(u16::from(back.response_code), 16);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn big_answers_truncate_to_the_limit_with_tc() {
        let req = query("big.example.", None);
        assert_eq!(udp_limit(&req), 512);
        assert_eq!(udp_limit(&query("a.", Some(4096))), 4096);
        assert_eq!(udp_limit(&query("a.", Some(100))), 512);
        let mut resp = response_to(&req, ResponseCode::NoError);
        for i in 0..100u8 {
            resp.answers.push(Record::from_rdata(Name::from_ascii("big.example.").unwrap(), 5, RData::A(Ipv4Addr::new(10, 0, 0, i).into())));
        }
        let b = encode(&resp, 512);
        let back = Message::from_vec(&b).unwrap();
        assert!(b.len() <= 512 && back.truncation && back.answers.is_empty(), "{} bytes", b.len());
        let whole = Message::from_vec(&encode(&resp, MAX_TCP)).unwrap();
        assert_eq!((whole.answers.len(), whole.truncation), (100, false));
    }
}
