//! Hostile documents: the readers refuse entity expansion in every form (billion laughs,
//! external and parameter entities, any DOCTYPE) and nesting deep enough to exhaust the stack,
//! quickly and with an error that says why.

use std::time::{Duration, Instant};

use coupa_doc::{DocError, MAX_DEPTH, Value, json, xml};

/// Parses `doc` and returns the error, failing the test if it was accepted or took long (an
/// expansion would take seconds and gigabytes; a refusal takes microseconds).
fn refused(doc: &[u8]) -> DocError {
    let started = Instant::now();
    let result = xml::parse(doc);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    match result {
        Ok((root, value)) => panic!("accepted as <{root}>: {value:?}"),
        Err(e) => e,
    }
}

fn message(e: &DocError) -> String {
    e.to_string()
}

#[test]
fn billion_laughs_is_refused_at_its_doctype() {
    let mut bomb =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..=9 {
        let previous = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        bomb.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{previous};").repeat(10)
        ));
    }
    bomb.push_str("]>\n<invoice-header><notes>&lol9;</notes></invoice-header>");
    let e = refused(bomb.as_bytes());
    assert!(
        message(&e).contains("DOCTYPE declarations are not allowed"),
        "{e}"
    );
}

#[test]
fn an_external_entity_is_refused_and_nothing_is_read() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE invoice-header [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<invoice-header><notes>&xxe;</notes></invoice-header>"#;
    let e = refused(xxe);
    let text = message(&e);
    assert!(
        text.contains("DOCTYPE declarations are not allowed"),
        "{text}"
    );
    assert!(!text.contains("root:"), "nothing of the file: {text}");
}

#[test]
fn parameter_entities_are_refused() {
    let remote = br#"<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % dtd SYSTEM "http://127.0.0.1:1/evil.dtd"> %dtd;]>
<x>1</x>"#;
    assert!(message(&refused(remote)).contains("DOCTYPE"));
    let local = br#"<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % p "<!ENTITY e 'expanded'>"> %p;]>
<x>&e;</x>"#;
    assert!(message(&refused(local)).contains("DOCTYPE"));
}

#[test]
fn any_doctype_is_refused_internal_subset_or_not() {
    for doc in [
        &br#"<!DOCTYPE x [<!ELEMENT x (#PCDATA)>]><x>1</x>"#[..],
        br#"<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd"><x>1</x>"#,
        br#"<!DOCTYPE x PUBLIC "-//X//EN" "x.dtd"><x>1</x>"#,
        br#"<!DOCTYPE x><x>1</x>"#,
    ] {
        let e = refused(doc);
        assert!(message(&e).contains("DOCTYPE"), "{e}");
    }
}

#[test]
fn an_undeclared_entity_is_refused_and_the_five_predefined_are_read() {
    let e = refused(b"<x>&xxe;</x>");
    assert!(message(&e).contains("entity &xxe; is not allowed"), "{e}");
    let (_, v) = xml::parse(b"<x>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</x>").expect("predefined");
    assert_eq!(v, Value::Text("<>&\"'AB".into()));
    // Many of them cost linear time, not more.
    let many = format!("<x>{}</x>", "&amp;".repeat(200_000));
    let started = Instant::now();
    let (_, v) = xml::parse(many.as_bytes()).expect("linear");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(v.as_str().map(str::len), Some(200_000));
}

#[test]
fn an_entity_in_an_attribute_is_not_expanded() {
    // Only `type` and `nil` are read, never unescaped: a reference there is inert text.
    let (_, v) = xml::parse(br#"<x type="&lol;">5</x>"#).expect("read");
    assert_eq!(v, Value::Text("5".into()));
}

/// 100,000 nested elements: refused at the depth limit, without exhausting the stack (the
/// test thread's stack is small; a recursive reader would overflow it and abort the run).
#[test]
fn deep_xml_nesting_is_refused_without_exhausting_the_stack() {
    let n = 100_000;
    let deep = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    let e = refused(deep.as_bytes());
    assert!(matches!(e, DocError::TooDeep(MAX_DEPTH)), "{e}");
    let open = "<a>".repeat(n);
    assert!(matches!(
        xml::parse(open.as_bytes()),
        Err(DocError::TooDeep(_))
    ));
    // Self-closing leaves at the bottom and text in between change nothing.
    let mixed = format!("{}<b/>{}", "<a>x".repeat(n), "</a>".repeat(n));
    assert!(matches!(
        xml::parse(mixed.as_bytes()),
        Err(DocError::TooDeep(_))
    ));
    // Up to the limit is a document.
    let ok = format!("{}1{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
    xml::parse(ok.as_bytes()).expect("nesting within the limit reads");
}

#[test]
fn deep_json_nesting_is_refused_without_exhausting_the_stack() {
    let n = 100_000;
    for deep in [
        format!("{}{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)),
        "[".repeat(n),
    ] {
        let started = Instant::now();
        let e = json::parse(deep.as_bytes()).expect_err("too deep");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(e, DocError::TooDeep(_)) || message(&e).contains("recursion limit"),
            "{e}"
        );
    }
    // Deeper than our limit but within serde_json's own: our limit answers.
    let over = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
    assert!(matches!(
        json::parse(over.as_bytes()),
        Err(DocError::TooDeep(MAX_DEPTH))
    ));
    let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    json::parse(ok.as_bytes()).expect("nesting within the limit reads");
}

/// The same hostile inputs on a thread with a quarter of the usual 2 MiB stack (tokio's workers
/// and std's threads): a reader that recursed per level would overflow it (and abort the test
/// binary) long before 100,000 levels. (serde_json stops at 128 levels on its own, which in a
/// debug build needs a little over 256 KiB; the XML reader keeps an explicit stack.)
#[test]
fn hostile_nesting_is_safe_on_a_small_stack() {
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let n = 100_000;
            let deep_xml = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
            let deep_json = format!("{}{}", "[".repeat(n), "]".repeat(n));
            (
                xml::parse(deep_xml.as_bytes()).is_err(),
                json::parse(deep_json.as_bytes()).is_err(),
            )
        })
        .expect("thread");
    assert_eq!(worker.join().expect("no overflow"), (true, true));
}

/// Found by the `xml` fuzz target: a name the writer could not write back is refused on reading.
#[test]
fn element_names_that_are_not_xml_names_are_refused() {
    let e = refused(b"<invoice><\"\n\"\n=\"/=\"/></invoice>");
    assert!(message(&e).contains("is not an XML element name"), "{e}");
    let e = refused(b"<1st>x</1st>");
    assert!(message(&e).contains("<1st>"), "{e}");
    assert!(xml::parse(b"<invoice-header><a_b.c-d>1</a_b.c-d></invoice-header>").is_ok());
}
