//! Review a manifest file and print errors, warnings and the defaults patch (a debugging aid).

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: review_file <manifest>");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    match tkeha_api::review::review_text(&text, &tkeha_api::Policy::default()) {
        Ok(r) => {
            for e in &r.errors {
                println!("error: {e}");
            }
            for w in &r.warnings {
                println!("warning: {w}");
            }
            println!(
                "patch: {}",
                serde_json::to_string(&r.patch).unwrap_or_default()
            );
            if !r.allowed() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    }
}
