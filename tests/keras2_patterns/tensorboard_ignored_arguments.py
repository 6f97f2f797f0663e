"""A TensorBoard callback given batch_size= (and write_grads=): Keras 2.3.1 on TensorFlow 2
warned that it ignored them; Keras 3 refuses them."""

import os
import tempfile

from keras.callbacks import TensorBoard

# Only built: Keras 2.3.1's TensorBoard cannot be used in fit under TensorFlow 2.1 (the
# oracle's), keras-team/keras issue 13737.
board = TensorBoard(
    log_dir=os.path.join(tempfile.mkdtemp(), "logs"),
    batch_size=32,
    write_grads=False,
    histogram_freq=0,
)
assert not board.write_images
print("ok")
