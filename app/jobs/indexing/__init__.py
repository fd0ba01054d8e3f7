"""The indexing pipeline of ``lsr index``: shard encoders, shards, the index build, publishing."""
