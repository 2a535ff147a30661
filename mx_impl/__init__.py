"""MXNet ports of the reference networks (see reference_tf/ for the tf.slim originals)."""
