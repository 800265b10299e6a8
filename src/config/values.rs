//! The value forms a config file writes in words: durations (`90s`, `1h30m`), sizes (`50MB`)
//! and whether a host is this machine.

use std::time::Duration;

/// Parses durations written as `90s`, `5m`, `2h`, `1d`, `1h30m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(format!("bad duration \"{text}\": use e.g. 30s, 5m, 2h, 1d")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("bad duration \"{text}\": a number must come before each unit"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "bad duration \"{text}\": the last number has no unit"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Parses sizes written as `50MB`, `512KB`, `1GB` or a bare number of bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_uppercase();
    let (digits, mult) = if let Some(d) = t.strip_suffix("GB") {
        (d, 1usize << 30)
    } else if let Some(d) = t.strip_suffix("MB") {
        (d, 1 << 20)
    } else if let Some(d) = t.strip_suffix("KB") {
        (d, 1 << 10)
    } else if let Some(d) = t.strip_suffix('B') {
        (d, 1)
    } else {
        (t.as_str(), 1)
    };
    digits
        .trim()
        .parse::<usize>()
        .map(|n| n.saturating_mul(mult))
        .map_err(|_| format!("bad size \"{text}\": use e.g. 50MB, 512KB"))
}

/// Whether `host` names this machine (`localhost`, 127.0.0.0/8, ::1): the only hosts a
/// plain-text connection may go to.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}
