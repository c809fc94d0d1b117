//! One check of one instance: TCP connect, HTTP GET, MySQL query. Every probe is async and
//! bounded by a timeout; none blocks the runtime.
//!
//! Each result says how Nacos's processors count it: a pass, a failure that counts towards
//! `checkTimes` (timeouts, a busy server), or a failure that makes the instance unhealthy at
//! once (refused connection, an unexpected HTTP status, a SQL error).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::checker::HealthChecker;

/// Nacos's `CONNECT_TIMEOUT_MS` of the TCP, HTTP and MySQL processors.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an HTTP check may wait for the status line after connecting (the HTTP
/// `max` of Nacos's `httpHealthParams`).
const HTTP_RESPONSE_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Login plus query of a MySQL check (Nacos: `loginTimeout=1`, `setQueryTimeout(1)`).
#[cfg(feature = "mysql")]
const MYSQL_TIMEOUT: Duration = Duration::from_millis(2_000);
/// The status line must fit in this much of the answer.
const STATUS_LINE_LIMIT: usize = 8 * 1024;

/// Nacos's primary check: a replica (`read_only` ON) fails it.
#[cfg(feature = "mysql")]
const MYSQL_PRIMARY_CHECK: &str = "show global variables where variable_name='read_only'";

/// How a check ended, in Nacos's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Counts towards `checkTimes` failures.
    Fail,
    /// Unhealthy at once.
    FailNow,
}

/// The response time a result feeds into the next interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Measured(Duration),
    /// Twice the current interval (a timeout or a busy server).
    Doubled,
    /// The type's `max` (an error).
    Max,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub rt: Rt,
    /// Nacos's event-log message (`tcp:ok+`, `http:500`, …).
    pub message: String,
}

impl Outcome {
    fn new(verdict: Verdict, rt: Rt, message: impl Into<String>) -> Self {
        Outcome {
            verdict,
            rt,
            message: message.into(),
        }
    }
}

/// Run `checker` against `ip:port` once (`None` never gets here).
pub async fn run(checker: &HealthChecker, ip: &str, port: u16) -> Outcome {
    match checker {
        HealthChecker::Tcp | HealthChecker::None => tcp(ip, port).await,
        HealthChecker::Http {
            path,
            headers,
            expected_code,
        } => http(ip, port, path, headers, *expected_code).await,
        HealthChecker::Mysql { user, pwd, cmd } => {
            mysql(
                ip,
                port,
                user.as_deref(),
                pwd.as_deref(),
                cmd.as_deref().map(str::trim).filter(|c| !c.is_empty()),
            )
            .await
        }
    }
}

fn refused(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
    )
}

async fn connect(ip: &str, port: u16) -> Result<TcpStream, Outcome> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ip, port))).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) if refused(&e) => Err(Outcome::new(
            Verdict::FailNow,
            Rt::Max,
            format!("unable2connect:{e}"),
        )),
        Ok(Err(e)) => Err(Outcome::new(Verdict::Fail, Rt::Max, format!("error:{e}"))),
        Err(_) => Err(Outcome::new(Verdict::Fail, Rt::Doubled, "timeout")),
    }
}

async fn tcp(ip: &str, port: u16) -> Outcome {
    let started = Instant::now();
    match connect(ip, port).await {
        Ok(_stream) => Outcome::new(Verdict::Pass, Rt::Measured(started.elapsed()), "tcp:ok+"),
        Err(mut o) => {
            o.message = format!("tcp:{}", o.message);
            o
        }
    }
}

async fn http(
    ip: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    expected: u16,
) -> Outcome {
    let started = Instant::now();
    let mut stream = match connect(ip, port).await {
        Ok(s) => s,
        Err(mut o) => {
            o.message = format!("http:{}", o.message);
            return o;
        }
    };
    let target = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let host = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    let mut request = format!("GET {target} HTTP/1.1\r\n");
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("host") {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    if !has("user-agent") {
        request.push_str(concat!(
            "User-Agent: Nacos-Server:",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < STATUS_LINE_LIMIT {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let answer = match tokio::time::timeout(HTTP_RESPONSE_TIMEOUT, exchange).await {
        Err(_) => return Outcome::new(Verdict::Fail, Rt::Doubled, "http:timeout"),
        Ok(Err(e)) => return Outcome::new(Verdict::Fail, Rt::Max, format!("http:error:{e}")),
        Ok(Ok(buf)) => buf,
    };
    let Some(code) = status_code(&answer) else {
        return Outcome::new(Verdict::Fail, Rt::Max, "http:error:no HTTP status line");
    };
    let message = format!("http:{code}");
    if code == expected {
        Outcome::new(Verdict::Pass, Rt::Measured(started.elapsed()), message)
    } else if code == 503 || code == 302 {
        // Busy or moved: Nacos looks again before deciding.
        Outcome::new(Verdict::Fail, Rt::Doubled, message)
    } else {
        Outcome::new(Verdict::FailNow, Rt::Max, message)
    }
}

/// The status code of `HTTP/1.x NNN ...`.
fn status_code(answer: &[u8]) -> Option<u16> {
    let line_end = answer.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&answer[..line_end]).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(feature = "mysql")]
async fn mysql(
    ip: &str,
    port: u16,
    user: Option<&str>,
    pwd: Option<&str>,
    cmd: Option<&str>,
) -> Outcome {
    use sqlx::mysql::MySqlConnectOptions;

    let started = Instant::now();
    let cmd = cmd.unwrap_or(MYSQL_PRIMARY_CHECK);
    let mut options = MySqlConnectOptions::new().host(ip).port(port);
    if let Some(user) = user {
        options = options.username(user);
    }
    if let Some(pwd) = pwd {
        options = options.password(pwd);
    }
    let rows = match tokio::time::timeout(MYSQL_TIMEOUT, mysql_query(options, cmd)).await {
        Err(_) => return Outcome::new(Verdict::Fail, Rt::Doubled, "mysql:timeout"),
        Ok(Err(sqlx::Error::Io(e))) if !refused(&e) => {
            return Outcome::new(Verdict::Fail, Rt::Max, format!("mysql:error:{e}"));
        }
        Ok(Err(e)) => return Outcome::new(Verdict::FailNow, Rt::Max, format!("mysql:{e}")),
        Ok(Ok(rows)) => rows,
    };
    if cmd == MYSQL_PRIMARY_CHECK && read_only(rows.first()) {
        return Outcome::new(Verdict::Fail, Rt::Max, "mysql:error:current node is slave!");
    }
    Outcome::new(Verdict::Pass, Rt::Measured(started.elapsed()), "mysql:+ok")
}

/// Connect and run `cmd` over the text protocol (any statement a user names can run so).
#[cfg(feature = "mysql")]
async fn mysql_query(
    options: sqlx::mysql::MySqlConnectOptions,
    cmd: &str,
) -> Result<Vec<sqlx::mysql::MySqlRow>, sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = sqlx::mysql::MySqlConnection::connect_with(&options).await?;
    let rows = sqlx::Executor::fetch_all(&mut conn, cmd).await;
    // Closing politely is not part of the check.
    let _ = conn.close().await;
    rows
}

/// The second column of `show global variables where variable_name='read_only'` is `ON`.
#[cfg(feature = "mysql")]
fn read_only(row: Option<&sqlx::mysql::MySqlRow>) -> bool {
    use sqlx::Row as _;
    let Some(row) = row else { return false };
    let value = row
        .try_get::<String, _>(1)
        .or_else(|_| {
            row.try_get::<Vec<u8>, _>(1)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_default();
    value.eq_ignore_ascii_case("ON")
}

#[cfg(not(feature = "mysql"))]
async fn mysql(
    _ip: &str,
    _port: u16,
    _user: Option<&str>,
    _pwd: Option<&str>,
    _cmd: Option<&str>,
) -> Outcome {
    Outcome::new(
        Verdict::Fail,
        Rt::Max,
        "mysql:error:this server was built without the mysql feature",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503 Busy\r\nX: y\r\n"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 200"), None);
        assert_eq!(status_code(b"SSH-2.0\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 x\r\n"), None);
    }
}
