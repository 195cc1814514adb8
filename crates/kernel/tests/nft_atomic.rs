//! Batches are all or nothing, errors name the operation the kernel
//! refused, and large element loads work (in one transaction or in parts).

use std::time::Duration;
use weft_kernel::nft::*;

fn t() -> TableRef {
    TableRef::new(Family::Inet, "weft-atomic")
}

fn services() -> Set {
    Set::vmap("services", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService])
}

fn key(i: u32) -> Value {
    Value::concat([Value::be32(0x0a60_0000 + i), Value::proto(6), Value::port(80)])
}

#[test]
fn a_batch_with_one_bad_message_changes_nothing_and_names_it() {
    weft_testns::run("nft_bad_batch_changes_nothing", |_| {
        let mut nft = Nft::current().unwrap();
        let before = nft.generation().unwrap();
        let mut b = Batch::new();
        b.add_table(&Table::new(Family::Inet, "weft-atomic"))
            .add_chain(&t(), &Chain::regular("svc-a"))
            .add_set(&t(), &services())
            .add_elements(&t(), &services(), [Element::verdict(key(1), Verdict::Goto("svc-a".into()))])
            .add_rule(&t(), &Rule::new("svc-a", vec![Expr::accept()]))
            // Jumps to a chain that nothing creates: the kernel refuses this one.
            .add_rule(&t(), &Rule::new("svc-a", vec![Expr::jump("svc-missing")]).with_comment("broken"))
            .add_chain(&t(), &Chain::regular("svc-b"));
        let err = nft.commit(&b).unwrap_err();
        let text = err.to_string();
        assert!(err.is_not_found(), "{text}");
        assert!(text.contains("rule in chain svc-a (\"broken\")") && text.contains("inet weft-atomic"), "{text}");
        assert!(text.contains("nothing in the batch was applied"), "{text}");
        // Nothing of it exists: not even the table the first message created.
        assert!(nft.table(&t()).unwrap().is_none());
        assert_eq!(nft.generation().unwrap(), before);

        // The same batch without the bad rule commits whole.
        let mut good = Batch::new();
        good.add_table(&Table::new(Family::Inet, "weft-atomic"))
            .add_chain(&t(), &Chain::regular("svc-a"))
            .add_set(&t(), &services())
            .add_elements(&t(), &services(), [Element::verdict(key(1), Verdict::Goto("svc-a".into()))]);
        nft.commit(&good).unwrap();

        // On a live table, a failing update leaves the old state untouched.
        let mut upd = Batch::new();
        upd.delete_elements(&t(), &services(), [Element::verdict(key(1), Verdict::Goto("svc-a".into()))])
            .add_elements(&t(), &services(), [Element::verdict(key(2), Verdict::Goto("svc-gone".into()))]);
        let err = nft.commit(&upd).unwrap_err().to_string();
        assert!(err.contains("add elements 0..1") && err.contains("inet weft-atomic/services"), "{err}");
        let keys: Vec<Value> = nft.elements(&t(), &services()).unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, vec![key(1)]);

        // Every refused message is reported, the first as the cause.
        let mut two = Batch::new();
        two.delete_chain(&t(), "nope-1").delete_set(&t(), "nope-2");
        let err = nft.commit(&two).unwrap_err().to_string();
        assert!(err.contains("delete chain inet weft-atomic/nope-1") && err.contains("1 more refused: delete set inet weft-atomic/nope-2"), "{err}");
    });
}

#[test]
fn a_set_in_use_cannot_be_deleted_and_the_kernel_says_why() {
    weft_testns::run("nft_set_in_use", |_| {
        let mut nft = Nft::current().unwrap();
        let mut b = Batch::new();
        b.add_table(&Table::new(Family::Inet, "weft-atomic"))
            .add_chain(&t(), &Chain::regular("c"))
            .add_set(&t(), &services())
            .add_rule(&t(), &Rule::new("c", [Expr::ipv4_service_key(), vec![Expr::vmap("services", Reg::R1)]].concat()));
        nft.commit(&b).unwrap();
        let err = nft.commit(Batch::new().delete_set(&t(), "services")).unwrap_err();
        assert_eq!(err.kind(), weft_kernel::ErrorKind::Busy, "{err}");
        assert!(err.to_string().contains("delete set inet weft-atomic/services"), "{err}");
    });
}

#[test]
fn a_hundred_thousand_elements_load_in_one_transaction_and_in_parts() {
    weft_testns::run("nft_large_batches", |_| {
        let mut nft = Nft::current().unwrap();
        let n = 100_000u32;
        let elems = |from: u32, to: u32| (from..to).map(|i| Element::verdict(key(i), Verdict::Goto(format!("svc-{}", i % 10))));
        let mut b = Batch::new();
        b.add_table(&Table::new(Family::Inet, "weft-atomic")).add_set(&t(), &services());
        for i in 0..10 {
            b.add_chain(&t(), &Chain::regular(&format!("svc-{i}")));
        }
        b.add_elements(&t(), &services(), elems(0, n));
        nft.commit(&b).unwrap();
        assert_eq!(nft.elements(&t(), &services()).unwrap().len(), n as usize);

        // The same load, cut into transactions of at most 30,000.
        let mut b = Batch::new();
        b.flush_set(&t(), "services").add_elements(&t(), &services(), elems(0, n + 50_000));
        assert_eq!(nft.commit_in_parts(&b, 30_000).unwrap(), 6);
        let got = nft.elements(&t(), &services()).unwrap();
        assert_eq!(got.len(), (n + 50_000) as usize);
        let mut keys: Vec<Value> = got.into_iter().map(|e| e.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), (n + 50_000) as usize);

        // A failure in a later part names it; earlier parts stay.
        let mut b = Batch::new();
        b.flush_set(&t(), "services").add_elements(&t(), &services(), elems(0, 10)).add_elements(
            &t(),
            &services(),
            [Element::verdict(key(999_999), Verdict::Goto("no-such-chain".into()))],
        );
        let err = nft.commit_in_parts(&b, 5).unwrap_err().to_string();
        assert!(err.contains("part 3 of 3") && err.contains("parts before it are committed"), "{err}");
        // Parts: [flush, 0..4], [4..9], [9, bad]: the third rolled back whole.
        assert_eq!(nft.elements(&t(), &services()).unwrap().len(), 9);
    });
}

#[test]
fn timeouts_on_a_set_without_the_timeout_flag_are_refused_before_sending() {
    weft_testns::run("nft_refused_before_sending", |_| {
        let mut nft = Nft::current().unwrap();
        let set = Set::new("plain", &[KeyType::Ipv4Addr]);
        let mut b = Batch::new();
        b.add_table(&Table::new(Family::Inet, "weft-atomic"))
            .add_set(&t(), &set)
            .add_elements(&t(), &set, [Element::new(Value::be32(1)).with_timeout(Duration::from_secs(1))]);
        let err = nft.commit(&b).unwrap_err();
        assert_eq!(err.kind(), weft_kernel::ErrorKind::Invalid);
        assert!(err.to_string().contains("element 0 (key 0x00000001) of set inet weft-atomic/plain"), "{err}");
        assert!(nft.table(&t()).unwrap().is_none());
    });
}
