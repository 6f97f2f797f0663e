"""The table behind ``kutils migrate``: Keras 2 APIs that Keras 3 removed or changed.

Each entry maps what the command looks for to the fix it reports. The command rewrites
only the ``keras.utils`` imports and the ``*_generator`` calls; everything here is
reported, file by file with line numbers, for a person to change. Paths are written
in their ``keras.`` form; ``tensorflow.keras.`` and ``tensorflow.python.keras.`` are
matched too.
"""

from __future__ import annotations

# Names of Keras 3.15's keras.utils: those kutils does not offer stay in keras.utils
# (``keras.utils.set_random_seed``, ``register_keras_serializable``...) without a report.
KERAS3_UTILS = frozenset(
    [
        "Config",
        "CustomObjectScope",
        "FeatureSpace",
        "Progbar",
        "PyDataset",
        "Sequence",
        "array_to_img",
        "audio_dataset_from_directory",
        "bounding_boxes",
        "clear_session",
        "custom_object_scope",
        "deserialize_keras_object",
        "disable_interactive_logging",
        "enable_interactive_logging",
        "get_custom_objects",
        "get_file",
        "get_registered_name",
        "get_registered_object",
        "get_source_inputs",
        "image_dataset_from_directory",
        "img_to_array",
        "is_interactive_logging_enabled",
        "is_keras_tensor",
        "legacy",
        "load_img",
        "model_to_dot",
        "normalize",
        "pack_x_y_sample_weight",
        "pad_sequences",
        "plot_model",
        "register_keras_serializable",
        "save_img",
        "serialize_keras_object",
        "set_random_seed",
        "split_dataset",
        "standardize_dtype",
        "text_dataset_from_directory",
        "timeseries_dataset_from_array",
        "to_categorical",
        "unpack_x_y_sample_weight",
    ]
)

# Module paths (and everything under them) that Keras 3 no longer has.
MODULES: dict[str, str] = {
    "keras.layers.merge": (
        "keras.layers.merge is gone in Keras 3: import Concatenate, Add, Multiply, ... "
        "(and concatenate, add, ...) from keras.layers"
    ),
    "keras.layers.core": "keras.layers.core is gone in Keras 3: import Dense, Dropout, ... from keras.layers",
    "keras.layers.convolutional": (
        "keras.layers.convolutional is gone in Keras 3: import Conv2D, MaxPooling2D, ... "
        "from keras.layers"
    ),
    "keras.layers.recurrent": "keras.layers.recurrent is gone in Keras 3: import LSTM, GRU, ... from keras.layers",
    "keras.layers.normalization": (
        "keras.layers.normalization is gone in Keras 3: import BatchNormalization from keras.layers"
    ),
    "keras.layers.pooling": "keras.layers.pooling is gone in Keras 3: import the pooling layers from keras.layers",
    "keras.layers.embeddings": "keras.layers.embeddings is gone in Keras 3: import Embedding from keras.layers",
    "keras.layers.advanced_activations": (
        "keras.layers.advanced_activations is gone in Keras 3: import LeakyReLU, PReLU, ELU, "
        "Softmax, ReLU from keras.layers"
    ),
    "keras.layers.wrappers": (
        "keras.layers.wrappers is gone in Keras 3: import TimeDistributed, Bidirectional from keras.layers"
    ),
    "keras.layers.noise": "keras.layers.noise is gone in Keras 3: import GaussianNoise, ... from keras.layers",
    "keras.layers.local": (
        "keras.layers.local (LocallyConnected1D/2D) is gone in Keras 3: use Conv1D/Conv2D, or "
        "copy the layer from Keras 2"
    ),
    "keras.layers.cudnn_recurrent": (
        "CuDNNLSTM/CuDNNGRU are gone in Keras 3: use LSTM/GRU, which use cuDNN on a GPU by themselves"
    ),
    "keras.layers.convolutional_recurrent": (
        "keras.layers.convolutional_recurrent is gone in Keras 3: import ConvLSTM2D from keras.layers"
    ),
    "keras.engine": (
        "keras.engine is gone in Keras 3: import Layer, InputSpec, Model, Input from keras "
        "(keras.layers.Layer, keras.Model)"
    ),
    "keras.wrappers.scikit_learn": (
        "keras.wrappers.scikit_learn is gone in Keras 3: use keras.wrappers.SKLearnClassifier / "
        "SKLearnRegressor, or the scikeras package"
    ),
    "keras.preprocessing.text": (
        "keras.preprocessing.text (Tokenizer) is gone in Keras 3: use keras.layers.TextVectorization"
    ),
    "keras.utils.conv_utils": "keras.utils.conv_utils is private in Keras 3 and kutils does not offer it",
    "keras.utils.losses_utils": "keras.utils.losses_utils is gone in Keras 3 and kutils does not offer it",
    "keras.utils.metrics_utils": "keras.utils.metrics_utils is gone in Keras 3 and kutils does not offer it",
    "keras.utils.test_utils": "keras.utils.test_utils is gone in Keras 3 and kutils does not offer it",
}

# Single names (classes, functions) that Keras 3 removed or changed.
NAMES: dict[str, str] = {
    "keras.preprocessing.image.ImageDataGenerator": (
        "ImageDataGenerator is gone in Keras 3: use keras.utils.image_dataset_from_directory "
        "and augmentation layers (RandomFlip, RandomRotation, ...), or tf_keras"
    ),
    "keras.preprocessing.image.NumpyArrayIterator": (
        "NumpyArrayIterator is gone in Keras 3: use a kutils.Sequence or a tf.data.Dataset"
    ),
    "keras.preprocessing.image.DirectoryIterator": (
        "DirectoryIterator is gone in Keras 3: use keras.utils.image_dataset_from_directory"
    ),
    "keras.layers.CuDNNLSTM": "CuDNNLSTM is gone in Keras 3: use keras.layers.LSTM (cuDNN on GPU by itself)",
    "keras.layers.CuDNNGRU": "CuDNNGRU is gone in Keras 3: use keras.layers.GRU (cuDNN on GPU by itself)",
    "keras.layers.LocallyConnected1D": "LocallyConnected1D is gone in Keras 3",
    "keras.layers.LocallyConnected2D": "LocallyConnected2D is gone in Keras 3",
    "keras.layers.ThresholdedReLU": "ThresholdedReLU is gone in Keras 3: use keras.layers.ReLU(threshold=...)",
    "keras.layers.Merge": "the Merge layer is gone: use Concatenate, Add, ... from keras.layers",
}

# keras.backend functions that Keras 3 keeps in keras.backend.
BACKEND_KEPT = frozenset(
    {
        "backend",
        "clear_session",
        "epsilon",
        "floatx",
        "get_uid",
        "image_data_format",
        "is_float_dtype",
        "is_int_dtype",
        "is_keras_tensor",
        "result_type",
        "set_epsilon",
        "set_floatx",
        "set_image_data_format",
        "standardize_dtype",
    }
)

# Keras 2 backend functions with a namesake in keras.ops (checked against Keras 3.15).
BACKEND_TO_OPS = frozenset(
    [
        "abs",
        "all",
        "any",
        "arange",
        "argmax",
        "argmin",
        "batch_normalization",
        "binary_crossentropy",
        "cast",
        "categorical_crossentropy",
        "clip",
        "concatenate",
        "cos",
        "ctc_decode",
        "cumprod",
        "cumsum",
        "dot",
        "dtype",
        "elu",
        "equal",
        "exp",
        "expand_dims",
        "eye",
        "greater",
        "greater_equal",
        "hard_sigmoid",
        "identity",
        "in_top_k",
        "is_tensor",
        "less",
        "less_equal",
        "log",
        "logsumexp",
        "max",
        "maximum",
        "mean",
        "min",
        "minimum",
        "ndim",
        "not_equal",
        "one_hot",
        "ones",
        "ones_like",
        "prod",
        "relu",
        "repeat",
        "reshape",
        "round",
        "shape",
        "sigmoid",
        "sign",
        "sin",
        "softmax",
        "softplus",
        "softsign",
        "sparse_categorical_crossentropy",
        "sqrt",
        "square",
        "squeeze",
        "stack",
        "std",
        "stop_gradient",
        "sum",
        "switch",
        "tanh",
        "tile",
        "transpose",
        "var",
        "zeros",
        "zeros_like",
    ]
)

# Keras 2 backend functions without a namesake in keras.ops, with the fix.
BACKEND_FIXES: dict[str, str] = {
    "set_session": "Keras 3 has no TensorFlow session: remove K.set_session (configure TensorFlow with tf.config)",
    "get_session": "Keras 3 has no TensorFlow session: TensorFlow 2 runs eagerly; use tf.function if needed",
    "tf": "K.tf is gone: import tensorflow as tf",
    "int_shape": "use x.shape (a tuple) or keras.ops.shape(x)",
    "variable": "use keras.Variable(value)",
    "constant": "use keras.ops.convert_to_tensor(value)",
    "eval": "use keras.ops.convert_to_numpy(x)",
    "get_value": "use variable.numpy() or keras.ops.convert_to_numpy(x)",
    "batch_get_value": "use [keras.ops.convert_to_numpy(x) for x in xs]",
    "set_value": "use variable.assign(value)",
    "batch_set_value": "use variable.assign(value) for each variable",
    "placeholder": "Keras 3 has no placeholders: use keras.Input(shape=...)",
    "function": "K.function is gone: build a keras.Model(inputs, outputs) and call it",
    "gradients": "use tf.GradientTape (TensorFlow) to compute gradients",
    "learning_phase": "the learning phase is gone: pass training=True/False to the layer call",
    "set_learning_phase": "the learning phase is gone: pass training=True/False to the layer call",
    "in_train_phase": "the learning phase is gone: branch on the training argument of call()",
    "in_test_phase": "the learning phase is gone: branch on the training argument of call()",
    "batch_dot": "use keras.ops.einsum or keras.ops.matmul",
    "batch_flatten": "use keras.ops.reshape(x, (keras.ops.shape(x)[0], -1))",
    "flatten": "use keras.ops.reshape(x, (-1,))",
    "gather": "use keras.ops.take(x, indices, axis=0)",
    "permute_dimensions": "use keras.ops.transpose(x, axes)",
    "pow": "use keras.ops.power",
    "l2_normalize": "use keras.utils.normalize or x / keras.ops.norm(x, axis=..., keepdims=True)",
    "repeat_elements": "use keras.ops.repeat(x, rep, axis=axis)",
    "reverse": "use keras.ops.flip",
    "bias_add": "use x + bias",
    "count_params": "use layer.count_params() or sum(keras.ops.size(w) for w in weights)",
    "random_normal": "use keras.random.normal",
    "random_uniform": "use keras.random.uniform",
    "truncated_normal": "use keras.random.truncated_normal",
    "random_binomial": "use keras.random.binomial",
    "dropout": "use keras.random.dropout",
    "conv1d": "use keras.ops.conv",
    "conv2d": "use keras.ops.conv",
    "conv3d": "use keras.ops.conv",
    "conv2d_transpose": "use keras.ops.conv_transpose",
    "depthwise_conv2d": "use keras.ops.depthwise_conv",
    "separable_conv2d": "use keras.ops.separable_conv",
    "pool2d": "use keras.ops.max_pool or keras.ops.average_pool",
    "pool3d": "use keras.ops.max_pool or keras.ops.average_pool",
    "rnn": "use keras.layers.RNN with a cell",
    "ctc_batch_cost": "use keras.losses.CTC or keras.ops.ctc_loss",
    "image_dim_ordering": "use keras.backend.image_data_format()",
    "set_image_dim_ordering": "use keras.backend.set_image_data_format()",
    "name_scope": "use keras.name_scope",
    "update": "use variable.assign(value)",
    "update_add": "use variable.assign_add(value)",
    "update_sub": "use variable.assign_sub(value)",
    "cast_to_floatx": "use keras.ops.cast(x, keras.backend.floatx())",
}

# Methods (any receiver) that Keras 3 removed.
METHODS: dict[str, str] = {
    "predict_classes": (
        "Model.predict_classes is gone: use np.argmax(model.predict(x), axis=-1) "
        "(or (model.predict(x) > 0.5).astype('int32') for a sigmoid output)"
    ),
    "predict_proba": "Model.predict_proba is gone: use model.predict(x)",
    "_make_predict_function": "Keras 3 has no _make_predict_function: remove the call",
    "_make_train_function": "Keras 3 has no _make_train_function: remove the call",
    "_make_test_function": "Keras 3 has no _make_test_function: remove the call",
}

# The generator methods the command rewrites into kutils functions.
GENERATOR_METHODS = ("fit_generator", "evaluate_generator", "predict_generator")

# Keras 1 keywords of the generator methods that Keras 2 already dropped.
GENERATOR_KEYWORDS: dict[str, str] = {
    "samples_per_epoch": "Keras 1's samples_per_epoch: pass steps_per_epoch (batches, not samples)",
    "nb_epoch": "Keras 1's nb_epoch: pass epochs",
    "nb_val_samples": "Keras 1's nb_val_samples: pass validation_steps (batches, not samples)",
    "nb_worker": "Keras 1's nb_worker: pass workers",
    "pickle_safe": "Keras 1's pickle_safe: pass use_multiprocessing",
    "max_q_size": "Keras 1's max_q_size: pass max_queue_size",
    "val_samples": "Keras 1's val_samples: pass steps (batches, not samples)",
}

# Keyword arguments of optimizer constructors (keras.optimizers.X) that Keras 3 rejects.
OPTIMIZER_KEYWORDS: dict[str, str] = {
    "lr": "Keras 3 optimizers reject lr=: pass learning_rate=",
    "decay": (
        "Keras 3 optimizers reject decay=: pass a schedule, e.g. "
        "learning_rate=keras.optimizers.schedules.InverseTimeDecay(lr, 1, decay)"
    ),
}

# Calls whose file name decides the saving format.
SAVING_CALLS = frozenset({"save", "save_weights", "save_model", "ModelCheckpoint"})
SAVING_MESSAGE = (
    "Keras 3 saves models in the .keras format: model.save('x.h5') writes legacy HDF5 "
    "with a warning, save_weights needs a name ending in .weights.h5, and ModelCheckpoint "
    "needs .keras (or .weights.h5 with save_weights_only=True)"
)

# Base classes of custom objects that Keras 3 rebuilds from get_config() on loading.
CUSTOM_OBJECT_BASES = frozenset(
    {
        "keras.layers.Layer",
        "keras.engine.Layer",
        "keras.engine.topology.Layer",
        "keras.engine.base_layer.Layer",
        "keras.Layer",
        "keras.Model",
        "keras.models.Model",
        "keras.engine.Model",
        "keras.engine.training.Model",
    }
)
CUSTOM_OBJECT_MESSAGE = (
    "custom layer/model {name} takes __init__ arguments but has no get_config: Keras 3 "
    "saves and reloads it through get_config()/from_config(); add get_config returning "
    "those arguments (and from_config if they hold layers or other objects)"
)
