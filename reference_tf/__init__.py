"""tf.slim network definitions: the reference side ("the truth") of every comparison.

Modules here import TensorFlow when they are imported, so this package itself
imports nothing: ``from reference_tf import inception_resnet_v2`` pays the cost,
``import reference_tf`` does not.
"""
