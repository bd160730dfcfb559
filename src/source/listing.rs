//! Parser for HTML directory listings (nginx/Apache autoindex, as physionet.org serves
//! under `/files/`, and Python's `http.server`): the entries a page links to, whether
//! each is a directory, and its size where the page shows one. Used to find versions
//! (`/files/<slug>/`) and to walk projects that publish no SHA256SUMS.txt.

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingEntry {
    /// The entry's name (percent-decoded, without the trailing `/` of directories).
    pub name: String,
    /// True for sub-directories (links ending in `/`).
    pub is_dir: bool,
    /// Size in bytes, when the listing shows an exact one.
    pub size: Option<u64>,
}

/// Extracts the entries of a listing page. Links that leave the directory (parent
/// links, absolute paths, other hosts, query-only sort links, nested paths) are dropped.
pub fn parse_listing(html: &str) -> Vec<ListingEntry> {
    let mut out: Vec<ListingEntry> = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(found) = lower[pos..].find("<a ") {
        let start = pos + found;
        let Some(tag_end) = lower[start..].find('>').map(|i| start + i) else {
            break;
        };
        pos = tag_end + 1;
        let Some(href) = attr(&html[start..tag_end], &lower[start..tag_end], "href") else {
            continue;
        };
        // The text after `</a>` up to the end of the line holds date and size in
        // autoindex output: `name</a>   08-Feb-2019 18:45   4558`.
        let rest_start = lower[pos..]
            .find("</a>")
            .map(|i| pos + i + 4)
            .unwrap_or(pos);
        let rest_end = html[rest_start..]
            .find('\n')
            .map(|i| rest_start + i)
            .unwrap_or(html.len());
        let tail = &html[rest_start..rest_end];
        let Some(decoded) = percent_decode(&href) else {
            continue;
        };
        let is_dir = decoded.ends_with('/');
        let name = decoded.trim_end_matches('/');
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('\\')
            || href.contains(':')
            || href.starts_with('?')
            || href.starts_with('#')
            || href.contains('?')
        {
            continue;
        }
        if out.iter().any(|e| e.name == name) {
            continue;
        }
        let size = if is_dir { None } else { size_of_tail(tail) };
        out.push(ListingEntry {
            name: name.to_string(),
            is_dir,
            size,
        });
    }
    out
}

/// The value of attribute `name` in a start tag (quoted with `"` or `'`, or bare).
fn attr(tag: &str, lower_tag: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = lower_tag[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0 || lower_tag.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = tag[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let v = rest[1..].trim_start();
        return match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].find(q).map(|end| v[1..1 + end].to_string()),
            Some(_) => Some(
                v.split(|c: char| c.is_whitespace() || c == '>')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            None => None,
        };
    }
    None
}

/// The last white-space separated token of an autoindex line, read as an exact byte
/// count. Human-readable sizes (`1.2K`) are not exact and give `None`.
fn size_of_tail(tail: &str) -> Option<u64> {
    let text = strip_tags(tail);
    let last = text.split_whitespace().last()?;
    last.parse().ok()
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Decodes `%XX` escapes and `&amp;`; `None` when the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let s = s.replace("&amp;", "&");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Orders version strings numerically by dot-separated parts (`1.10.0` > `1.9.1`),
/// falling back to text order for non-numeric parts.
pub fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let mut pa = a.split('.');
    let mut pb = b.split('.');
    loop {
        match (pa.next(), pb.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// True for names that look like a PhysioNet version directory (`1.0.0`).
pub fn is_version(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"<html>
<head><title>Index of /files/mitdb/1.0.0/</title></head>
<body>
<h1>Index of /files/mitdb/1.0.0/</h1><hr><pre><a href="../">../</a>
<a href="x_mitdb/">x_mitdb/</a>                                           08-Feb-2019 18:45                   -
<a href="100.atr">100.atr</a>                                            08-Feb-2019 18:45                4558
<a href="my%20file.dat">my file.dat</a>                                  08-Feb-2019 18:45              650000
<a href="/etc/">/etc/</a>                                  08-Feb-2019 18:45              -
<a href="https://evil.example/x">x</a>
<a href="?C=N;O=D">Name</a>
</pre><hr></body>
</html>"#;

    #[test]
    fn parses_nginx_autoindex() {
        let e = parse_listing(NGINX);
        assert_eq!(
            e,
            vec![
                ListingEntry {
                    name: "x_mitdb".into(),
                    is_dir: true,
                    size: None
                },
                ListingEntry {
                    name: "100.atr".into(),
                    is_dir: false,
                    size: Some(4558)
                },
                ListingEntry {
                    name: "my file.dat".into(),
                    is_dir: false,
                    size: Some(650000)
                },
            ]
        );
    }

    #[test]
    fn parses_python_http_server() {
        let html = "<ul>\n<li><a href=\"1.0.0/\">1.0.0/</a></li>\n<li><a href='RECORDS'>RECORDS</a></li>\n</ul>";
        let e = parse_listing(html);
        assert_eq!(e.len(), 2);
        assert!(e[0].is_dir && e[0].name == "1.0.0");
        assert_eq!(e[1].size, None);
    }

    #[test]
    fn orders_versions() {
        let mut v = vec!["1.9.1", "1.10.0", "1.0.0", "0.1"];
        v.sort_by(|a, b| cmp_versions(a, b));
        assert_eq!(v, ["0.1", "1.0.0", "1.9.1", "1.10.0"]);
        assert!(is_version("1.0.3") && !is_version("x_mitdb"));
    }

    proptest::proptest! {
        /// Arbitrary HTML never panics the parser, and no entry name can leave its
        /// directory.
        #[test]
        fn names_stay_in_their_directory(html in "(<a href=\"[^\"]{0,20}\">x</a>[ 0-9-]{0,10}\n|\\PC{0,30}){0,8}") {
            for e in parse_listing(&html) {
                proptest::prop_assert!(!e.name.is_empty() && !e.name.contains('/') && e.name != "..");
            }
        }
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(percent_decode("a%2Fb%20c").unwrap(), "a/b c");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
    }
}
