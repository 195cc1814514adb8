//! A batch to netlink: BATCH_BEGIN, one message per operation (element lists
//! cut to fit the 64 KiB attribute limit), BATCH_END. Each message remembers
//! what it does, so a kernel error names the object it is about.
//! Everything is checked before anything is sent.

use super::batch::{Batch, Mode, Op, Position};
use super::elem::{self, Element};
use super::msg::{self, nfnl_type, put_message, AttrWriter};
use super::set::{Set, SetData};
use super::sys as c;
use super::table::TableRef;
use super::udata::MAX_COMMENT_LEN;
use super::value::Data;
use crate::error::{Error, Result};

/// Encoded batch: bytes to send and, per sequence number, what the message did.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    /// (seq, description) of every operation message (not BEGIN/END).
    pub msgs: Vec<(u32, String)>,
}

impl Encoded {
    pub(crate) fn describe(&self, seq: u32) -> Option<&str> {
        self.msgs
            .binary_search_by_key(&seq, |(s, _)| *s)
            .ok()
            .map(|i| self.msgs[i].1.as_str())
    }
}

/// Room for elements in one message: the nest limit minus a margin for headers.
const ELEMENTS_PER_MESSAGE_BYTES: usize = msg::NLA_MAX_PAYLOAD - 64;

pub(crate) fn encode(batch: &Batch, first_seq: u32) -> Result<Encoded> {
    let mut out = Encoded { bytes: Vec::new(), msgs: Vec::new() };
    let mut seq = first_seq;
    let res_id = c::NFNL_SUBSYS_NFTABLES as u16;
    let mut begin = AttrWriter::new();
    if let Some(gen) = batch.generation {
        begin.be32(c::NFNL_BATCH_GENID, gen);
    }
    put_message(&mut out.bytes, c::NFNL_MSG_BATCH_BEGIN, msg::NLM_F_REQUEST, seq, 0, res_id, &begin.buf);
    for op in &batch.ops {
        check(op)?;
        encode_op(op, &mut seq, &mut out);
    }
    seq += 1;
    put_message(&mut out.bytes, c::NFNL_MSG_BATCH_END, msg::NLM_F_REQUEST, seq, 0, res_id, &[]);
    Ok(out)
}

fn create(mode: Mode) -> u16 {
    match mode {
        Mode::Add => msg::NLM_F_CREATE,
        Mode::Create => msg::NLM_F_CREATE | msg::NLM_F_EXCL,
    }
}

fn verb(mode: Mode) -> &'static str {
    match mode {
        Mode::Add => "add",
        Mode::Create => "create",
    }
}

fn push(out: &mut Encoded, seq: &mut u32, ty: u16, flags: u16, table: &TableRef, attrs: &AttrWriter, what: String) {
    *seq += 1;
    put_message(&mut out.bytes, nfnl_type(c::NFNL_SUBSYS_NFTABLES, ty), msg::NLM_F_REQUEST | msg::NLM_F_ACK | flags, *seq, table.family.code() as u8, 0, &attrs.buf);
    out.msgs.push((*seq, what));
}

fn encode_op(op: &Op, seq: &mut u32, out: &mut Encoded) {
    let mut w = AttrWriter::new();
    match op {
        Op::Table { table, mode } => {
            table.encode(&mut w);
            push(out, seq, c::NFT_MSG_NEWTABLE, create(*mode), &table.table_ref(), &w, format!("{} table {}", verb(*mode), table.table_ref()));
        }
        Op::DeleteTable { table } => {
            w.str(c::NFTA_TABLE_NAME, &table.name);
            push(out, seq, c::NFT_MSG_DELTABLE, 0, table, &w, format!("delete table {table}"));
        }
        Op::Chain { table, chain, mode } => {
            w.str(c::NFTA_CHAIN_TABLE, &table.name);
            chain.encode(table.family, &mut w);
            push(out, seq, c::NFT_MSG_NEWCHAIN, create(*mode), table, &w, format!("{} chain {table}/{}", verb(*mode), chain.name));
        }
        Op::FlushChain { table, chain } => {
            w.str(c::NFTA_RULE_TABLE, &table.name).str(c::NFTA_RULE_CHAIN, chain);
            push(out, seq, c::NFT_MSG_DELRULE, 0, table, &w, format!("flush chain {table}/{chain}"));
        }
        Op::DeleteChain { table, chain } => {
            w.str(c::NFTA_CHAIN_TABLE, &table.name).str(c::NFTA_CHAIN_NAME, chain);
            push(out, seq, c::NFT_MSG_DELCHAIN, 0, table, &w, format!("delete chain {table}/{chain}"));
        }
        Op::Set { table, set, mode } => {
            w.str(c::NFTA_SET_TABLE, &table.name);
            set.encode(*seq + 1, &mut w);
            push(out, seq, c::NFT_MSG_NEWSET, create(*mode), table, &w, format!("{} set {table}/{}", verb(*mode), set.name));
        }
        Op::FlushSet { table, set } => {
            w.str(c::NFTA_SET_ELEM_LIST_TABLE, &table.name).str(c::NFTA_SET_ELEM_LIST_SET, set);
            push(out, seq, c::NFT_MSG_DELSETELEM, 0, table, &w, format!("flush set {table}/{set}"));
        }
        Op::DeleteSet { table, set } => {
            w.str(c::NFTA_SET_TABLE, &table.name).str(c::NFTA_SET_NAME, set);
            push(out, seq, c::NFT_MSG_DELSET, 0, table, &w, format!("delete set {table}/{set}"));
        }
        Op::Elements { table, set, elems, mode } => {
            encode_elements(out, seq, table, set, elems, Some(*mode));
        }
        Op::DeleteElements { table, set, elems } => {
            encode_elements(out, seq, table, set, elems, None);
        }
        Op::Rule { table, rule, at } => {
            w.str(c::NFTA_RULE_TABLE, &table.name);
            rule.encode(&mut w);
            let flags = match at {
                Position::Append => msg::NLM_F_APPEND,
                Position::After(h) => {
                    w.be64(c::NFTA_RULE_POSITION, *h);
                    msg::NLM_F_APPEND
                }
                Position::Prepend => 0,
                Position::Before(h) => {
                    w.be64(c::NFTA_RULE_POSITION, *h);
                    0
                }
            };
            push(out, seq, c::NFT_MSG_NEWRULE, msg::NLM_F_CREATE | flags, table, &w, format!("add {} of table {table}", rule.describe()));
        }
        Op::ReplaceRule { table, rule, handle } => {
            w.str(c::NFTA_RULE_TABLE, &table.name).be64(c::NFTA_RULE_HANDLE, *handle);
            rule.encode(&mut w);
            push(out, seq, c::NFT_MSG_NEWRULE, msg::NLM_F_REPLACE, table, &w, format!("replace rule handle {handle} in chain {table}/{}", rule.chain));
        }
        Op::DeleteRule { table, chain, handle } => {
            w.str(c::NFTA_RULE_TABLE, &table.name).str(c::NFTA_RULE_CHAIN, chain).be64(c::NFTA_RULE_HANDLE, *handle);
            push(out, seq, c::NFT_MSG_DELRULE, 0, table, &w, format!("delete rule handle {handle} in chain {table}/{chain}"));
        }
    }
}

/// One message per run of elements that fits under the attribute size limit.
fn encode_elements(out: &mut Encoded, seq: &mut u32, table: &TableRef, set: &Set, elems: &[Element], mode: Option<Mode>) {
    let keys_only = mode.is_none();
    let (ty, flags, verb) = match mode {
        Some(m) => (c::NFT_MSG_NEWSETELEM, create(m), verb(m)),
        None => (c::NFT_MSG_DELSETELEM, 0, "delete"),
    };
    let mut list = AttrWriter::new();
    let mut scratch = AttrWriter::new();
    let mut first = 0;
    let mut flush = |list: &mut AttrWriter, from: usize, to: usize, seq: &mut u32| {
        let mut w = AttrWriter::new();
        w.str(c::NFTA_SET_ELEM_LIST_TABLE, &table.name).str(c::NFTA_SET_ELEM_LIST_SET, &set.name);
        w.nest(c::NFTA_SET_ELEM_LIST_ELEMENTS, |n| n.buf.extend_from_slice(&list.buf));
        let what = format!("{verb} elements {from}..{to} (the first with key {:?}) of set {table}/{}", elems[from].key, set.name);
        push(out, seq, ty, flags, table, &w, what);
        list.buf.clear();
    };
    for (i, e) in elems.iter().enumerate() {
        scratch.buf.clear();
        elem::encode_elements(set, std::slice::from_ref(e), keys_only, &mut scratch);
        if !list.buf.is_empty() && list.len() + scratch.len() > ELEMENTS_PER_MESSAGE_BYTES {
            flush(&mut list, first, i, seq);
            first = i;
        }
        list.buf.extend_from_slice(&scratch.buf);
    }
    if !list.buf.is_empty() {
        flush(&mut list, first, elems.len(), seq);
    }
}

fn invalid(object: String, why: String) -> Error {
    Error::invalid("encode", object, why)
}

fn check_name(kind: &str, table: &TableRef, name: &str) -> Result<()> {
    if name.is_empty() || name.len() >= c::NFT_NAME_MAXLEN as usize || name.contains('\0') {
        return Err(invalid(format!("{kind} {table}/{name:?}"), format!("name must be 1 to {} bytes without NUL", c::NFT_NAME_MAXLEN - 1)));
    }
    Ok(())
}

fn check_comment(object: impl FnOnce() -> String, comment: &Option<String>) -> Result<()> {
    match comment {
        Some(c) if c.len() > MAX_COMMENT_LEN || c.contains('\0') => {
            Err(invalid(object(), format!("comment is {} bytes; keep it to {MAX_COMMENT_LEN} without NUL", c.len())))
        }
        _ => Ok(()),
    }
}

fn check(op: &Op) -> Result<()> {
    match op {
        Op::Table { table, .. } => check_name("table", &table.table_ref(), &table.name),
        Op::Chain { table, chain, .. } => {
            check_name("chain", table, &chain.name)?;
            check_comment(|| format!("chain {table}/{}", chain.name), &chain.comment)
        }
        Op::Set { table, set, .. } => check_set(table, set),
        Op::Elements { table, set, elems, .. } => elems.iter().enumerate().try_for_each(|(i, e)| check_element(table, set, i, e, false)),
        Op::DeleteElements { table, set, elems } => elems.iter().enumerate().try_for_each(|(i, e)| check_element(table, set, i, e, true)),
        Op::Rule { table, rule, .. } | Op::ReplaceRule { table, rule, .. } => {
            check_name("chain", table, &rule.chain)?;
            check_comment(|| format!("{} of table {table}", rule.describe()), &rule.comment)
        }
        _ => Ok(()),
    }
}

fn check_set(table: &TableRef, set: &Set) -> Result<()> {
    check_name("set", table, &set.name)?;
    let object = || format!("set {table}/{}", set.name);
    check_comment(object, &set.comment)?;
    if set.key.is_empty() {
        return Err(invalid(object(), "key has no fields: give at least one KeyType".into()));
    }
    if set.key_len() > 64 {
        return Err(invalid(object(), format!("key is {} bytes, over the kernel's 64", set.key_len())));
    }
    if set.timeout.is_some() && !set.flags.timeout {
        return Err(invalid(object(), "a default timeout needs flags.timeout".into()));
    }
    Ok(())
}

/// `keys_only`: for deletion, where only keys (and range ends) matter.
fn check_element(table: &TableRef, set: &Set, i: usize, e: &Element, keys_only: bool) -> Result<()> {
    let object = || format!("element {i} (key {:?}) of set {table}/{}", e.key, set.name);
    let key_len = set.key_len() as usize;
    for (field, v) in [("key", Some(&e.key)), ("key_end", e.key_end.as_ref())] {
        if let Some(v) = v {
            if v.len() != key_len {
                return Err(invalid(object(), format!("{field} is {} bytes but the set's key {:?} is {key_len}: build it with Value::concat of those fields", v.len(), set.key)));
            }
        }
    }
    if e.key_end.is_some() && !set.flags.interval {
        return Err(invalid(object(), "key_end (a range) needs a set with flags.interval".into()));
    }
    if let Some(end) = &e.key_end {
        if end < &e.key {
            return Err(invalid(object(), format!("range ends ({end:?}) before it starts")));
        }
    }
    if keys_only {
        return Ok(());
    }
    if e.timeout.is_some() && !set.flags.timeout {
        return Err(invalid(object(), "timeout needs a set with flags.timeout".into()));
    }
    check_comment(object, &e.comment)?;
    match (&set.data, &e.data) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(invalid(object(), "data given, but the set is not a map".into())),
        (Some(_), None) => Err(invalid(object(), "the set is a map: give data (Element::mapping / Element::verdict)".into())),
        (Some(SetData::Verdict), Some(Data::Verdict(_))) => Ok(()),
        (Some(SetData::Value(fields)), Some(Data::Value(v))) => {
            let want = set.data_len().unwrap_or(0) as usize;
            if v.len() == want {
                Ok(())
            } else {
                Err(invalid(object(), format!("data is {} bytes but the map's data {fields:?} is {want}", v.len())))
            }
        }
        (Some(SetData::Verdict), Some(_)) => Err(invalid(object(), "this is a verdict map: data must be a verdict".into())),
        (Some(SetData::Value(_)), Some(_)) => Err(invalid(object(), "this map holds values: data must be a value, not a verdict".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::chain::Chain;
    use crate::nft::expr::Expr;
    use crate::nft::msg::{messages, Attrs};
    use crate::nft::rule::Rule;
    use crate::nft::set::KeyType;
    use crate::nft::table::{Family, Table};
    use crate::nft::value::{Value, Verdict};

    fn t() -> TableRef {
        TableRef::new(Family::Inet, "weft")
    }

    #[test]
    fn a_batch_is_framed_by_begin_and_end_with_one_sequence_number_per_message() {
        let set = Set::vmap("svc", &[KeyType::Ipv4Addr]);
        let mut b = Batch::new();
        b.expect_generation(42)
            .create_table(&Table::new(Family::Inet, "weft"))
            .add_chain(&t(), &Chain::regular("svc-a"))
            .add_set(&t(), &set)
            .add_elements(&t(), &set, [Element::verdict(Value::ipv4([10, 96, 0, 1].into()), Verdict::Goto("svc-a".into()))])
            .add_rule(&t(), &Rule::new("svc-a", vec![Expr::accept()]).with_comment("ok"));
        let enc = encode(&b, 100).unwrap();
        let msgs = messages(&enc.bytes).unwrap();
        assert_eq!(msgs.len(), 7);
        assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), (100..107).collect::<Vec<_>>());
        assert_eq!((msgs[0].ty, msgs[6].ty), (c::NFNL_MSG_BATCH_BEGIN, c::NFNL_MSG_BATCH_END));
        let (_, begin) = msgs[0].nfgen().unwrap();
        let genid: Vec<_> = Attrs::new(begin).map(|a| a.unwrap()).collect();
        assert_eq!(genid, vec![(c::NFNL_BATCH_GENID, &42u32.to_be_bytes()[..])]);
        // create = CREATE|EXCL, acks requested, family inet.
        assert_eq!(msgs[1].ty, 0x0a00 | c::NFT_MSG_NEWTABLE);
        assert_eq!(msgs[1].flags, msg::NLM_F_REQUEST | msg::NLM_F_ACK | msg::NLM_F_CREATE | msg::NLM_F_EXCL);
        assert_eq!(msgs[1].nfgen().unwrap().0, 1);
        assert_eq!(msgs[5].flags & msg::NLM_F_APPEND, msg::NLM_F_APPEND);
        assert_eq!(enc.describe(101), Some("create table inet weft"));
        assert!(enc.describe(104).unwrap().contains("elements 0..1"), "{:?}", enc.describe(104));
        assert_eq!(enc.describe(105), Some("add rule in chain svc-a (\"ok\") [immediate] of table inet weft"));
        assert_eq!(enc.describe(106), None);
    }

    #[test]
    fn large_element_lists_are_cut_into_messages_under_the_attribute_limit() {
        let set = Set::new("big", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]);
        let elems: Vec<Element> = (0..20_000u32)
            .map(|i| Element::new(Value::concat([Value::be32(i), Value::proto(6), Value::port(80)])))
            .collect();
        let mut b = Batch::new();
        b.add_elements(&t(), &set, elems);
        let enc = encode(&b, 1).unwrap();
        let msgs = messages(&enc.bytes).unwrap();
        assert!(msgs.len() > 3, "{} messages", msgs.len());
        let mut total = 0;
        for m in &msgs[1..msgs.len() - 1] {
            assert!(m.payload.len() < 65535);
            let (_, attrs) = m.nfgen().unwrap();
            for a in Attrs::new(attrs) {
                let (ty, v) = a.unwrap();
                if ty == c::NFTA_SET_ELEM_LIST_ELEMENTS {
                    total += Attrs::new(v).count();
                }
            }
        }
        assert_eq!(total, 20_000);
    }

    #[test]
    fn mistakes_are_refused_before_sending_naming_the_element_and_field() {
        let map = Set::map("dnat", &[KeyType::Ipv4Addr], &[KeyType::Ipv4Addr, KeyType::InetService]);
        let cases: Vec<(Element, &str)> = vec![
            (Element::new(Value::port(80)), "key is 2 bytes"),
            (Element::new(Value::ipv4([1, 2, 3, 4].into())), "give data"),
            (Element::mapping(Value::ipv4([1, 2, 3, 4].into()), Value::ipv4([5, 6, 7, 8].into())), "data is 4 bytes"),
            (Element::verdict(Value::ipv4([1, 2, 3, 4].into()), Verdict::Accept), "must be a value"),
            (Element::range(Value::ipv4([1, 2, 3, 4].into()), Value::ipv4([1, 2, 3, 9].into())), "flags.interval"),
        ];
        for (e, want) in cases {
            let mut b = Batch::new();
            b.add_elements(&t(), &map, [e]);
            let err = encode(&b, 1).err().expect("refused").to_string();
            assert!(err.contains(want) && err.contains("inet weft/dnat"), "{err}");
        }
        let mut b = Batch::new();
        b.add_rule(&t(), &Rule::new("c", vec![]).with_comment(&"x".repeat(200)));
        assert!(encode(&b, 1).err().unwrap().to_string().contains("comment is 200 bytes"));
        let mut b = Batch::new();
        b.add_set(&t(), &Set::new("s", &[KeyType::Mark]).with_flags(Default::default()));
        b.ops.push(Op::Set { table: t(), set: Set { timeout: Some(std::time::Duration::from_secs(1)), ..Set::new("s", &[KeyType::Mark]) }, mode: Mode::Add });
        assert!(encode(&b, 1).err().unwrap().to_string().contains("flags.timeout"));
    }
}
