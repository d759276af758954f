use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = keystone_rs::cli::Cli::parse();
    match keystone_rs::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
