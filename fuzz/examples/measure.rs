//! What each built input costs: the peak allocation of one call of the function under each
//! target, per byte of input, for the shapes of `tkeha_fuzz::shapes` at the sizes given.
//!
//! `cargo run --release -p tkeha-fuzz --example measure -- [SIZE...]` (default 65536 and
//! 3145728: the webhook's body limit).

use tkeha_api::Policy;
use tkeha_fuzz::{Target, measure, shapes};
use tkeha_webhook::{Endpoint, admit};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![64 * 1024, 3 * 1024 * 1024]
    } else {
        sizes
    };
    let policy = Policy::default();
    println!("| input | bytes | peak allocation | per byte |");
    println!("|---|---|---|---|");
    for size in sizes {
        for shape in shapes::all(size) {
            let n = shape.bytes.len();
            let peak = match shape.target {
                Target::Admit => {
                    measure(|| admit(Endpoint::Validate, &shape.bytes, &policy).is_ok()).1
                }
                Target::Review => {
                    let text = String::from_utf8_lossy(&shape.bytes);
                    let Ok(v) = tkeha_api::parse_manifest(&text) else {
                        println!("| {} | {n} | does not parse | |", shape.name);
                        continue;
                    };
                    measure(|| tkeha_api::review_owned(v, None, &policy).is_ok()).1
                }
                Target::Manifest => {
                    let text = String::from_utf8_lossy(&shape.bytes);
                    measure(|| tkeha_api::parse_manifest(&text).is_ok()).1
                }
                Target::KnownHosts => {
                    let (_, peak) = measure(|| shape.target.run(&shape.bytes));
                    peak
                }
            };
            println!(
                "| {} | {n} | {:.1} MiB | {:.1} |",
                shape.name,
                peak as f64 / 1048576.0,
                peak as f64 / n as f64
            );
        }
    }
}
