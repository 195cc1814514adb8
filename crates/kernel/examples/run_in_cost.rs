//! How long entering a netns on a fresh thread takes (run_in), and a netlink
//! handle open, on this machine. Needs root; runs in a throwaway netns.
use std::time::Instant;
use weft_kernel::{run_in, Handle, Netns};

fn main() {
    weft_testns::run("run_in_cost", |t| {
        let ns = Netns::create(&t.dir().join("x")).unwrap();
        let n = 200;
        let s = Instant::now();
        for _ in 0..n {
            std::thread::scope(|sc| sc.spawn(|| ()).join().unwrap());
        }
        println!("thread spawn+join: {:.1} us", s.elapsed().as_secs_f64() * 1e6 / n as f64);
        let s = Instant::now();
        for _ in 0..n {
            run_in(&ns, || ()).unwrap();
        }
        println!("run_in: {:.1} us", s.elapsed().as_secs_f64() * 1e6 / n as f64);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let s = Instant::now();
            for _ in 0..n {
                let h = Handle::open(&ns).unwrap();
                h.link_by_name("lo").await.unwrap();
            }
            println!("Handle::open + 1 request: {:.1} us", s.elapsed().as_secs_f64() * 1e6 / n as f64);
            let s = Instant::now();
            for _ in 0..n {
                let h = Handle::current().unwrap();
                h.link_by_name("lo").await.unwrap();
            }
            println!("Handle::current + 1 request: {:.1} us", s.elapsed().as_secs_f64() * 1e6 / n as f64);
            let h = Handle::open(&ns).unwrap();
            let s = Instant::now();
            for _ in 0..n {
                h.link_by_name("lo").await.unwrap();
            }
            println!("1 request: {:.1} us", s.elapsed().as_secs_f64() * 1e6 / n as f64);
            let s = Instant::now();
            for _ in 0..n {
                let h = Handle::open(&ns).unwrap();
                drop(h);
            }
            println!("Handle::open only: {:.1} us", s.elapsed().as_secs_f64() * 1e6 / n as f64);
        });
    });
}
