//! A loopback TCP proxy that holds every chunk it forwards DELAY_MS, in each direction, for
//! `bench/pg_latency.py` (PostgreSQL "2 ms away" where the kernel has no `tc netem`).
//!
//!     delay_proxy TARGET_PORT DELAY_MS
//!
//! Listens on a free port of 127.0.0.1, prints it on a line of its own, and forwards each
//! connection to TARGET_PORT. Each direction of a connection has a reading thread, which
//! stamps every chunk with the instant it is due, and a writing thread, which sleeps until
//! then (the kernel's sleep, precise to tens of microseconds; an event loop's timers round to
//! the millisecond) and writes it: chunks keep their order, and the proxy's own CPU stays out
//! of the figure as far as it can (the Python proxy this replaced used 0.4 s of CPU in a 4 s
//! run on two cores, beside retentiond and the server).
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(target), Some(delay)) = (
        args.get(1).and_then(|a| a.parse::<u16>().ok()),
        args.get(2).and_then(|a| a.parse::<f64>().ok()),
    ) else {
        eprintln!("usage: delay_proxy TARGET_PORT DELAY_MS");
        std::process::exit(2);
    };
    let delay = Duration::from_secs_f64(delay / 1000.0);
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    println!("{port}");
    std::io::stdout().flush().expect("stdout");
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            eprintln!("delay_proxy: cannot reach 127.0.0.1:{target}");
            continue;
        };
        for stream in [&client, &server] {
            stream.set_nodelay(true).expect("TCP_NODELAY");
        }
        let (client2, server2) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        forward(client, server, delay);
        forward(server2, client2, delay);
    }
}

/// Forwards what `from` sends to `to`, each chunk `delay` after it was read.
fn forward(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer) {
            if chunks
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    thread::spawn(move || {
        for (at, chunk) in due {
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
