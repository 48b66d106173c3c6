//! The userspace TCP proxy against tiny in-test servers (no database): delay without
//! accumulation, handshake cost, black hole, reset, counters, drop, refused upstream.

use rpo_lab::Proxy;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A server on 127.0.0.1 (its port returned) that runs `serve` on every connection.
async fn tcp_server<F, Fut>(serve: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s));
        }
    });
    port
}

/// An echo server on 127.0.0.1: writes back whatever it reads; on EOF, half-closes too.
async fn echo_server() -> u16 {
    tcp_server(|mut s| async move {
        let _ = s.set_nodelay(true);
        let mut buf = vec![0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = s.shutdown().await;
    })
    .await
}

/// A server that speaks first, like MySQL: sends `hello` as soon as it accepts.
async fn greeting_server() -> u16 {
    tcp_server(|mut s| async move {
        let _ = s.write_all(b"hello").await;
        // Keep it open until the peer goes away.
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

async fn connect(proxy: &Proxy) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", proxy.port())).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` and waits for it to come back; returns how long that took.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t0 = Instant::now();
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    timeout(Duration::from_secs(5), s.read_exact(&mut back)).await.expect("echo within 5 s").unwrap();
    assert_eq!(back, msg);
    t0.elapsed()
}

/// True when the connection ended (EOF or an error) within `within`.
async fn ends_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    let t0 = Instant::now();
    while t0.elapsed() < within {
        match timeout(within.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
    false
}

async fn wait_open(proxy: &Proxy, want: usize) {
    let t0 = Instant::now();
    while proxy.open() != want {
        assert!(t0.elapsed() < Duration::from_secs(2), "open() = {}, want {want}", proxy.open());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delay_is_one_way_and_does_not_accumulate() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    proxy.set_delay(Duration::from_millis(100));
    assert_eq!(proxy.delay(), Duration::from_millis(100));
    let mut s = connect(&proxy).await;

    // Client speaks first: handshake (2 × delay) + request/answer round trip (2 × delay).
    let first = round_trip(&mut s, b"first").await;
    println!("first round trip on a new connection, delay 100 ms: {first:?}");
    assert!(first >= Duration::from_millis(400) && first < Duration::from_millis(550), "{first:?}");

    let rtt = round_trip(&mut s, b"ping").await;
    println!("round trip, delay 100 ms: {rtt:?}");
    assert!(rtt >= Duration::from_millis(200) && rtt < Duration::from_millis(300), "{rtt:?}");

    // A burst of 20 writes arrives about one round trip later, not 20.
    let t0 = Instant::now();
    let mut want = Vec::new();
    for i in 0..20 {
        let msg = format!("burst-{i:02};");
        s.write_all(msg.as_bytes()).await.unwrap();
        want.extend_from_slice(msg.as_bytes());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut back = vec![0u8; want.len()];
    timeout(Duration::from_secs(5), s.read_exact(&mut back)).await.unwrap().unwrap();
    let burst = t0.elapsed();
    println!("burst of 20 writes echoed, delay 100 ms: {burst:?}");
    assert_eq!(back, want, "order preserved");
    assert!(burst >= Duration::from_millis(200) && burst < Duration::from_millis(400), "{burst:?}");

    proxy.set_delay(Duration::ZERO);
    let fast = round_trip(&mut s, b"fast").await;
    println!("round trip after set_delay(0): {fast:?}");
    assert!(fast < Duration::from_millis(50), "{fast:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_costs_a_round_trip() {
    let proxy = Proxy::start(greeting_server().await).await.unwrap();
    proxy.set_delay(Duration::from_millis(100));
    let t0 = Instant::now();
    let mut s = connect(&proxy).await;
    let mut hello = [0u8; 5];
    timeout(Duration::from_secs(5), s.read_exact(&mut hello)).await.unwrap().unwrap();
    let greeted = t0.elapsed();
    println!("server-first greeting, delay 100 ms: {greeted:?}");
    assert_eq!(&hello, b"hello");
    assert!(greeted >= Duration::from_millis(300) && greeted < Duration::from_millis(450), "{greeted:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn half_close_is_forwarded() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    proxy.set_delay(Duration::from_millis(20));
    let mut s = connect(&proxy).await;
    s.write_all(b"abc").await.unwrap();
    s.shutdown().await.unwrap();
    let mut all = Vec::new();
    timeout(Duration::from_secs(2), s.read_to_end(&mut all)).await.unwrap().unwrap();
    assert_eq!(all, b"abc");
    drop(s);
    wait_open(&proxy, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blackhole_holds_bytes_and_delivers_them_after() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut s = connect(&proxy).await;
    round_trip(&mut s, b"before").await;

    proxy.set_blackhole(true);
    assert!(proxy.blackhole());
    s.write_all(b"held-1").await.unwrap();
    s.write_all(b"held-2").await.unwrap();
    // A connection made during the hole is accepted but gets nothing through.
    let mut late = connect(&proxy).await;
    late.write_all(b"late").await.unwrap();
    let mut buf = [0u8; 12];
    assert!(timeout(Duration::from_millis(500), s.read(&mut buf)).await.is_err(), "echo during the hole");
    assert!(timeout(Duration::from_millis(10), late.read(&mut buf)).await.is_err(), "echo during the hole");
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(proxy.open(), 2, "sockets stay open");

    let t0 = Instant::now();
    proxy.set_blackhole(false);
    timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await.unwrap().unwrap();
    println!("held bytes delivered {:?} after the black hole ended", t0.elapsed());
    assert_eq!(&buf, b"held-1held-2", "held bytes delivered in order");
    let mut four = [0u8; 4];
    timeout(Duration::from_secs(2), late.read_exact(&mut four)).await.unwrap().unwrap();
    assert_eq!(&four, b"late");
    round_trip(&mut s, b"after").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_closes_open_connections_only() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut s = connect(&proxy).await;
    round_trip(&mut s, b"one").await;
    wait_open(&proxy, 1).await;

    let t0 = Instant::now();
    proxy.reset();
    assert!(ends_within(&mut s, Duration::from_millis(500)).await, "connection still open after reset");
    println!("client saw the reset after {:?}", t0.elapsed());
    wait_open(&proxy, 0).await;

    let mut s2 = connect(&proxy).await;
    round_trip(&mut s2, b"two").await;
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(proxy.open(), 1);

    // Also during a black hole.
    proxy.set_blackhole(true);
    proxy.reset();
    assert!(ends_within(&mut s2, Duration::from_millis(500)).await, "reset during a black hole");
    proxy.set_blackhole(false);
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_and_drop() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    assert_eq!((proxy.accepted(), proxy.open()), (0, 0));
    let mut a = connect(&proxy).await;
    let mut b = connect(&proxy).await;
    round_trip(&mut a, b"a").await;
    round_trip(&mut b, b"b").await;
    assert_eq!((proxy.accepted(), proxy.open()), (2, 2));

    drop(a);
    wait_open(&proxy, 1).await;
    assert_eq!(proxy.accepted(), 2);

    let port = proxy.port();
    drop(proxy);
    assert!(ends_within(&mut b, Duration::from_millis(500)).await, "connection open after drop");
    // The port stops accepting (a connect may race the abort for a moment).
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(t0.elapsed() < Duration::from_secs(1), "still accepting after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_upstream_closes_the_client() {
    let nobody = rpo_lab::free_port();
    let proxy = Proxy::start(nobody).await.unwrap();
    assert_eq!(proxy.target(), nobody);
    let mut s = connect(&proxy).await;
    assert!(ends_within(&mut s, Duration::from_millis(500)).await);
    wait_open(&proxy, 0).await;
    assert_eq!(proxy.accepted(), 1);
}
