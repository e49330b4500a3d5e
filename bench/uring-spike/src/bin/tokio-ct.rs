//! (a) tokio current_thread runtime: readiness-based I/O through epoll (mio).
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uring_spike::{handle, Outcome, BUF_SIZE};

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut rbuf = vec![0u8; BUF_SIZE];
    let mut wbuf = Vec::with_capacity(BUF_SIZE);
    let mut filled = 0;
    loop {
        let n = match stream.read(&mut rbuf[filled..]).await {
            Ok(0) => return uring_spike::peer_closed(),
            Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let (consumed, close) = match handle(&rbuf[..filled], &mut wbuf) {
            Outcome::Ok { consumed, close } => (consumed, close),
            Outcome::Bad { consumed } => (consumed, true),
        };
        if !wbuf.is_empty() {
            if stream.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
        if close {
            return;
        }
        rbuf.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

fn main() {
    uring_spike::exit_on_sigterm();
    let addr = uring_spike::addr();
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(&addr).await.unwrap();
        uring_spike::ready("tokio-ct", &addr);
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        }
    });
}
