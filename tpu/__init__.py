"""Where training runs: tf.distribute strategy resolution and the per-platform choices that go with it."""
