"""What a client feels during a drill, measured with TiKV's own client (``tikv-client``, Rust
inside) reading one key per region: the prober, its records, and the figures drawn from them."""
