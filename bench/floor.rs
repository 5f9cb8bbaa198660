//! The floor for `plan --listing`: read the same listing file, parse it into the same
//! `Backup` values and sort them by group and time, nothing else. `bench/run.sh` compares the
//! whole `retentiond plan` process with this.
//!
//!     cargo build --release --example floor && target/release/examples/floor LISTING.json

use retentiond::model::Listing;

fn main() {
    let path = std::env::args().nth(1).expect("usage: floor LISTING.json");
    let mut listing = Listing::read(std::path::Path::new(&path)).expect("a listing file");
    listing
        .backups
        .sort_by(|a, b| (&a.group, a.created_at).cmp(&(&b.group, b.created_at)));
    println!("{} backups", listing.backups.len());
}
