//! The S3 `ListObjectsV2` API (the AWS open-data mirror of PhysioNet has no HTML
//! listings): the parser for its XML answer and the URL of each page. Used to find
//! versions (`CommonPrefixes` under `<slug>/`) and file sizes under `<slug>/<version>/`.
//! See <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>.

use url::Url;

/// One page of a `ListObjectsV2` answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// `CommonPrefixes/Prefix` values (sub-"directories" when a delimiter was given).
    pub prefixes: Vec<String>,
    /// `Contents` entries: key and size.
    pub objects: Vec<(String, u64)>,
    /// `NextContinuationToken` when `IsTruncated` is true.
    pub next: Option<String>,
}

/// The URL of one page: `<bucket>?list-type=2&prefix=…[&delimiter=/][&continuation-token=…]`
/// (`bucket` is the virtual-hosted `https://<bucket>.s3.amazonaws.com/` or a path-style
/// `https://host/<bucket>/`).
pub fn list_url(bucket: &Url, prefix: &str, delimiter: bool, token: Option<&str>) -> Url {
    let mut u = bucket.clone();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        q.append_pair("list-type", "2");
        q.append_pair("prefix", prefix);
        if delimiter {
            q.append_pair("delimiter", "/");
        }
        if let Some(t) = token {
            q.append_pair("continuation-token", t);
        }
    }
    u
}

/// Parses a `ListBucketResult` document. Unknown elements are ignored; malformed
/// entries (a size that is not a number) are skipped.
pub fn parse_list(xml: &str) -> ListPage {
    let mut page = ListPage::default();
    for block in blocks(xml, "CommonPrefixes") {
        if let Some(p) = blocks(block, "Prefix").next() {
            page.prefixes.push(unescape(p));
        }
    }
    for block in blocks(xml, "Contents") {
        let key = blocks(block, "Key").next().map(unescape);
        let size = blocks(block, "Size")
            .next()
            .and_then(|s| s.trim().parse().ok());
        if let (Some(k), Some(s)) = (key, size) {
            page.objects.push((k, s));
        }
    }
    let truncated = blocks(xml, "IsTruncated").next().map(str::trim) == Some("true");
    if truncated {
        page.next = blocks(xml, "NextContinuationToken").next().map(unescape);
    }
    page
}

/// The text of every `<tag>…</tag>` element in `xml` (not nested in one another).
fn blocks<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut pos = 0;
    std::iter::from_fn(move || {
        let start = pos + xml[pos..].find(&open)? + open.len();
        let end = start + xml[start..].find(&close)?;
        pos = end + close.len();
        Some(&xml[start..end])
    })
}

/// Replaces XML's predefined entities.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_contents_and_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>physionet-open</Name>
<Prefix>mitdb/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>
<IsTruncated>true</IsTruncated><NextContinuationToken>1ueG&amp;x</NextContinuationToken>
<Contents><Key>mitdb/1.0.0/100.atr</Key><LastModified>2019-01-01T00:00:00.000Z</LastModified><Size>4558</Size></Contents>
<Contents><Key>mitdb/1.0.0/a&amp;b.dat</Key><Size>12</Size></Contents>
<CommonPrefixes><Prefix>mitdb/1.0.0/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let p = parse_list(xml);
        assert_eq!(p.prefixes, ["mitdb/1.0.0/"]);
        assert_eq!(
            p.objects,
            [
                ("mitdb/1.0.0/100.atr".to_string(), 4558),
                ("mitdb/1.0.0/a&b.dat".to_string(), 12)
            ]
        );
        assert_eq!(p.next.as_deref(), Some("1ueG&x"));
    }

    #[test]
    fn builds_page_urls() {
        let b = Url::parse("https://physionet-open.s3.amazonaws.com/").unwrap();
        assert_eq!(
            list_url(&b, "mitdb/", true, Some("a b")).as_str(),
            "https://physionet-open.s3.amazonaws.com/?list-type=2&prefix=mitdb%2F&delimiter=%2F&continuation-token=a+b"
        );
    }
}
