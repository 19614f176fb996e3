fn main() {
    // embed_migrations! reads ../../migrations at compile time: rebuild when it changes.
    println!("cargo:rerun-if-changed=../../migrations");
}
