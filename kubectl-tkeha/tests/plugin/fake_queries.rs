//! Reading the query strings the fake API server recorded: `&a=1&b=x%2Fy` -> ["a=1", "b=x/y"].

/// Decoded `key=value` pairs in order; empty segments (kube starts with `&`) are skipped.
pub fn pairs(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            format!("{}={}", decode(key), decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn decodes_kube_queries() {
    assert_eq!(
        pairs("&labelSelector=a.io%2Fuid%3D1&follow=true"),
        ["labelSelector=a.io/uid=1", "follow=true"]
    );
}
