"""The rules of ``kutils migrate``: what it looks for in Keras 2 code, one entry per rule.

Each :class:`Rule` names the syntactic position it matches (its ``kind``), the Keras 2
thing it matches there, the fix it reports, and, when the rule rewrites the code, the
Keras 3 form it writes. The engine (``kutils._migrate_engine`` and the modules it calls)
knows how to find and rewrite each kind; adding a rule of a known kind is one entry here
and one test. Paths are written in their ``keras.`` form; ``tensorflow.keras.`` and
``tensorflow.python.keras.`` are matched too.

The kinds:

- ``module``: a module path Keras 3 no longer has, and everything under it (imports and
  uses). With ``keras3`` set to the module's Keras 3 home, an import of names that home
  offers (``kutils._migrate_tables``) is pointed there (``kutils._migrate_rewrites``).
- ``name``: a class or function, by its full path. With ``keras3`` set, its import and
  uses are renamed: a bare name (``mean_squared_error``) in the same module, a
  ``kutils.`` path to kutils.
- ``numpy``: a numpy alias of a builtin (``numpy.float``), rewritten to ``keras3``.
- ``backend``: a ``keras.backend`` function, by its name. Those of
  ``kutils._migrate_backend`` are rewritten to their ``keras.ops``, ``keras.random`` or
  ``kutils.backend`` form; the others are reported.
- ``method``: a method called on any receiver. With ``keras3`` set to a kutils function,
  ``x.method(args)`` becomes ``function(x, args)``; otherwise it is reported.
- ``method-keyword``: a method called with one of the keyword arguments ``within``
  names (or with as many positional arguments as put the first of them in place): with
  ``keras3`` set to a kutils function, rewritten like a ``method`` rule; calls without
  it are left alone.
- ``keyword``: a keyword argument of the calls ``within`` names: a path prefix ending in
  ``.`` (``keras.optimizers.``: calls resolved to that path) or ``.method`` (calls of that
  method on any receiver). The optimizer rules ``lr`` and ``decay`` are rewritten
  (``kutils._migrate_rewrites.optimizer_keywords``); the others are reported.
- ``callback-mode``: a callback class whose ``mode='auto'`` Keras 2 inferred from the
  monitored name (``max`` when a word of ``within`` is in it): the mode is written out.
- ``outside-method``: a method called on anything but ``self`` (or ``super()``): with
  ``keras3`` set to a kutils function, rewritten like a ``method`` rule; otherwise
  reported.
- ``saving-built``: like ``saving``, for a file name built at run time.
- ``saving``: a file name ending in ``.h5`` or ``.hdf5`` (not ``.weights.h5``) given to
  the functions or methods ``within`` names.
- ``weights-call``: ``x.save_weights(name)`` or ``x.load_weights(name)`` whose name is
  not a literal the weights-name rule renames (built at run time, a variable, or a
  literal without an ``.h5``/``.hdf5``/``.weights.h5`` suffix): rewritten to the kutils
  function ``keras3`` names, ``save_weights(x, name)``, which keeps Keras 2's meaning
  at any name (``kutils._migrate_model_calls``).
- ``compile-metrics``: ``compile(loss=<n losses>, metrics=[...])`` with a flat metrics
  list, which Keras 2 applied to every output: with ``n`` known from the code (a list,
  tuple or dict literal of losses, or a name assigned one once in the same scope), the
  list is given per output; otherwise reported (``kutils._migrate_model_calls``).
- ``trainable-compile``: ``x.compile(...)`` in a file that assigns ``.trainable`` on
  something: rewritten to ``compile(x, ...)`` (``keras3``), which trains the weights
  trainable when it ran, as Keras 2 did; compile calls of other files are left alone.
- ``default``: an argument whose Keras 2.3.1 default Keras 3 changed, of the class
  ``keras2`` names: ``within`` is the keyword, Keras 2's position of the argument (or
  ``""``) and the Keras 2 keywords that give it too (``lr``); ``keras3`` is Keras 2's
  value, written out when the call leaves the argument out
  (``kutils._migrate_defaults``); without ``keras3`` (or ``within``) it is reported.
  Only for standalone ``keras``: ``tf.keras`` 2.x already had Keras 3's defaults.
- ``optimizer-name``: an optimizer named by a string in ``compile`` whose defaults
  changed: rewritten to ``keras3``, the class, with the ``default`` arguments written out.
- ``custom-object``: a subclass of one of :data:`CUSTOM_OBJECT_BASES` whose ``__init__``
  takes arguments but which has no ``get_config``.
- ``ignored-keyword``: an argument that Keras 2.3.1 accepted and ignored under
  TensorFlow 2 in the calls ``within`` names (full paths) and that Keras 3 rejects:
  removed, and the call's other Keras 2 positional arguments written as keywords
  (``kutils._migrate_rewrites.ignored_keywords``); ``keras3`` is ``""``.
- ``iterator-next``: ``x.next()`` where ``x`` holds a flow of one of the classes
  ``within`` names: rewritten to ``next(x)`` (``kutils._migrate_iterators``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kutils import _migrate_backend


@dataclass(frozen=True)
class Rule:
    """One Keras 2 to Keras 3 change that ``kutils migrate`` looks for.

    Attributes:
        kind: the syntactic position it matches (see the module's docstring).
        keras2: what it matches there: a path, a function, method or keyword name.
        message: the fix, reported with file and line when the code is not rewritten.
        keras3: the form the code is rewritten to, or ``None`` when it is only reported.
        within: for ``keyword`` and ``saving`` rules, the calls the rule applies to.
    """

    kind: str
    keras2: str
    message: str
    keras3: str | None = None
    within: tuple[str, ...] = ()


# The calls of the generator methods, for the keyword rules that apply to them.
_GENERATOR_CALLS = (".fit_generator", ".evaluate_generator", ".predict_generator")

RULES: tuple[Rule, ...] = (
    # -- module paths Keras 3 no longer has (the path and everything under it): reported
    Rule(
        "module",
        "keras.layers.merge",
        "keras.layers.merge is gone in Keras 3: import Concatenate, Add, Multiply, ... (and concatenate, add, ...) from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.core",
        "keras.layers.core is gone in Keras 3: import Dense, Dropout, ... from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.convolutional",
        "keras.layers.convolutional is gone in Keras 3: import Conv2D, MaxPooling2D, ... from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.recurrent",
        "keras.layers.recurrent is gone in Keras 3: import LSTM, GRU, ... from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.normalization",
        "keras.layers.normalization is gone in Keras 3: import BatchNormalization from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.pooling",
        "keras.layers.pooling is gone in Keras 3: import the pooling layers from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.embeddings",
        "keras.layers.embeddings is gone in Keras 3: import Embedding from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.advanced_activations",
        "keras.layers.advanced_activations is gone in Keras 3: import LeakyReLU, PReLU, ELU, Softmax, ReLU from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.wrappers",
        "keras.layers.wrappers is gone in Keras 3: import TimeDistributed, Bidirectional from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.noise",
        "keras.layers.noise is gone in Keras 3: import GaussianNoise, ... from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.layers.local",
        "keras.layers.local (LocallyConnected1D/2D) is gone in Keras 3: use Conv1D/Conv2D, or copy the layer from Keras 2",
    ),
    Rule(
        "module",
        "keras.layers.cudnn_recurrent",
        "CuDNNLSTM/CuDNNGRU are gone in Keras 3: use LSTM/GRU, which use cuDNN on a GPU by themselves",
    ),
    Rule(
        "module",
        "keras.layers.convolutional_recurrent",
        "keras.layers.convolutional_recurrent is gone in Keras 3: import ConvLSTM2D from keras.layers",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.engine",
        "keras.engine is gone in Keras 3: import Layer, InputSpec, Model, Input from keras (keras.layers.Layer, keras.Model)",
        keras3="keras.layers",
    ),
    Rule(
        "module",
        "keras.wrappers.scikit_learn",
        "keras.wrappers.scikit_learn is gone in Keras 3: use keras.wrappers.SKLearnClassifier / SKLearnRegressor, or the scikeras package",
    ),
    Rule(
        "module",
        "keras.preprocessing.text",
        "keras.preprocessing.text is not public in Keras 3: import its names from kutils.preprocessing",
        keras3="kutils.preprocessing",
    ),
    Rule(
        "module",
        "keras.preprocessing.image",
        "keras.preprocessing.image is not public in Keras 3: import its names from kutils.preprocessing",
        keras3="kutils.preprocessing",
    ),
    Rule(
        "module",
        "keras.preprocessing.sequence",
        "keras.preprocessing.sequence is not public in Keras 3: import its names from kutils.preprocessing",
        keras3="kutils.preprocessing",
    ),
    Rule(
        "module",
        "keras.utils.conv_utils",
        "keras.utils.conv_utils is private in Keras 3 and kutils does not offer it",
    ),
    Rule(
        "module",
        "keras.utils.losses_utils",
        "keras.utils.losses_utils is gone in Keras 3 and kutils does not offer it",
    ),
    Rule(
        "module",
        "keras.utils.metrics_utils",
        "keras.utils.metrics_utils is gone in Keras 3 and kutils does not offer it",
    ),
    Rule(
        "module",
        "keras.utils.test_utils",
        "keras.utils.test_utils is gone in Keras 3 and kutils does not offer it",
    ),
    # -- classes and functions Keras 3 removed or changed: reported
    Rule(
        "name",
        "keras.layers.CuDNNLSTM",
        "CuDNNLSTM is gone in Keras 3: use keras.layers.LSTM (cuDNN on GPU by itself)",
    ),
    Rule(
        "name",
        "keras.layers.CuDNNGRU",
        "CuDNNGRU is gone in Keras 3: use keras.layers.GRU (cuDNN on GPU by itself)",
    ),
    Rule("name", "keras.layers.LocallyConnected1D", "LocallyConnected1D is gone in Keras 3"),
    Rule("name", "keras.layers.LocallyConnected2D", "LocallyConnected2D is gone in Keras 3"),
    Rule(
        "name",
        "keras.layers.ThresholdedReLU",
        "ThresholdedReLU is gone in Keras 3: use keras.layers.ReLU(threshold=...)",
    ),
    Rule(
        "name",
        "keras.layers.Merge",
        "the Merge layer is gone: use Concatenate, Add, ... from keras.layers",
    ),
    # -- keras.backend functions with a namesake in keras.ops (checked on Keras 3.15): reported
    Rule("backend", "abs", "use keras.ops.abs"),
    Rule("backend", "all", "use keras.ops.all"),
    Rule("backend", "any", "use keras.ops.any"),
    Rule("backend", "arange", "use keras.ops.arange"),
    Rule("backend", "argmax", "use keras.ops.argmax"),
    Rule("backend", "argmin", "use keras.ops.argmin"),
    Rule("backend", "batch_normalization", "use keras.ops.batch_normalization"),
    Rule("backend", "binary_crossentropy", "use keras.ops.binary_crossentropy"),
    Rule("backend", "cast", "use keras.ops.cast"),
    Rule("backend", "categorical_crossentropy", "use keras.ops.categorical_crossentropy"),
    Rule("backend", "clip", "use keras.ops.clip"),
    Rule("backend", "concatenate", "use keras.ops.concatenate"),
    Rule("backend", "cos", "use keras.ops.cos"),
    Rule("backend", "ctc_decode", "use keras.ops.ctc_decode"),
    Rule("backend", "cumprod", "use keras.ops.cumprod"),
    Rule("backend", "cumsum", "use keras.ops.cumsum"),
    Rule("backend", "dot", "use keras.ops.dot"),
    Rule("backend", "dtype", "use keras.ops.dtype"),
    Rule("backend", "elu", "use keras.ops.elu"),
    Rule("backend", "equal", "use keras.ops.equal"),
    Rule("backend", "exp", "use keras.ops.exp"),
    Rule("backend", "expand_dims", "use keras.ops.expand_dims"),
    Rule("backend", "eye", "use keras.ops.eye"),
    Rule("backend", "greater", "use keras.ops.greater"),
    Rule("backend", "greater_equal", "use keras.ops.greater_equal"),
    Rule("backend", "hard_sigmoid", "use keras.ops.hard_sigmoid"),
    Rule("backend", "identity", "use keras.ops.identity"),
    Rule("backend", "in_top_k", "use keras.ops.in_top_k"),
    Rule("backend", "is_tensor", "use keras.ops.is_tensor"),
    Rule("backend", "less", "use keras.ops.less"),
    Rule("backend", "less_equal", "use keras.ops.less_equal"),
    Rule("backend", "log", "use keras.ops.log"),
    Rule("backend", "logsumexp", "use keras.ops.logsumexp"),
    Rule("backend", "max", "use keras.ops.max"),
    Rule("backend", "maximum", "use keras.ops.maximum"),
    Rule("backend", "mean", "use keras.ops.mean"),
    Rule("backend", "min", "use keras.ops.min"),
    Rule("backend", "minimum", "use keras.ops.minimum"),
    Rule("backend", "ndim", "use keras.ops.ndim"),
    Rule("backend", "not_equal", "use keras.ops.not_equal"),
    Rule("backend", "one_hot", "use keras.ops.one_hot"),
    Rule("backend", "ones", "use keras.ops.ones"),
    Rule("backend", "ones_like", "use keras.ops.ones_like"),
    Rule("backend", "prod", "use keras.ops.prod"),
    Rule("backend", "relu", "use keras.ops.relu"),
    Rule("backend", "repeat", "use keras.ops.repeat"),
    Rule("backend", "reshape", "use keras.ops.reshape"),
    Rule("backend", "round", "use keras.ops.round"),
    Rule("backend", "shape", "use keras.ops.shape"),
    Rule("backend", "sigmoid", "use keras.ops.sigmoid"),
    Rule("backend", "sign", "use keras.ops.sign"),
    Rule("backend", "sin", "use keras.ops.sin"),
    Rule("backend", "softmax", "use keras.ops.softmax"),
    Rule("backend", "softplus", "use keras.ops.softplus"),
    Rule("backend", "softsign", "use keras.ops.softsign"),
    Rule(
        "backend",
        "sparse_categorical_crossentropy",
        "use keras.ops.sparse_categorical_crossentropy",
    ),
    Rule("backend", "sqrt", "use keras.ops.sqrt"),
    Rule("backend", "square", "use keras.ops.square"),
    Rule("backend", "squeeze", "use keras.ops.squeeze"),
    Rule("backend", "stack", "use keras.ops.stack"),
    Rule("backend", "std", "use keras.ops.std"),
    Rule("backend", "stop_gradient", "use keras.ops.stop_gradient"),
    Rule("backend", "sum", "use keras.ops.sum"),
    Rule("backend", "switch", "use keras.ops.switch"),
    Rule("backend", "tanh", "use keras.ops.tanh"),
    Rule("backend", "tile", "use keras.ops.tile"),
    Rule("backend", "transpose", "use keras.ops.transpose"),
    Rule("backend", "var", "use keras.ops.var"),
    Rule("backend", "zeros", "use keras.ops.zeros"),
    Rule("backend", "zeros_like", "use keras.ops.zeros_like"),
    # -- keras.backend functions without a namesake in keras.ops: reported with the fix
    Rule(
        "backend",
        "set_session",
        "Keras 3 has no TensorFlow session: remove K.set_session (configure TensorFlow with tf.config)",
    ),
    Rule(
        "backend",
        "get_session",
        "Keras 3 has no TensorFlow session: TensorFlow 2 runs eagerly; use tf.function if needed",
    ),
    Rule("backend", "tf", "K.tf is gone: import tensorflow as tf"),
    Rule("backend", "int_shape", "use x.shape (a tuple) or keras.ops.shape(x)"),
    Rule("backend", "variable", "use keras.Variable(value)"),
    Rule("backend", "constant", "use keras.ops.convert_to_tensor(value)"),
    Rule("backend", "eval", "use keras.ops.convert_to_numpy(x)"),
    Rule("backend", "get_value", "use variable.numpy() or keras.ops.convert_to_numpy(x)"),
    Rule("backend", "batch_get_value", "use [keras.ops.convert_to_numpy(x) for x in xs]"),
    Rule("backend", "set_value", "use variable.assign(value)"),
    Rule("backend", "batch_set_value", "use variable.assign(value) for each variable"),
    Rule("backend", "placeholder", "Keras 3 has no placeholders: use keras.Input(shape=...)"),
    Rule(
        "backend",
        "function",
        "K.function is gone: build a keras.Model(inputs, outputs) and call it",
    ),
    Rule("backend", "gradients", "use tf.GradientTape (TensorFlow) to compute gradients"),
    Rule(
        "backend",
        "learning_phase",
        "the learning phase is gone: pass training=True/False to the layer call",
    ),
    Rule(
        "backend",
        "set_learning_phase",
        "the learning phase is gone: pass training=True/False to the layer call",
    ),
    Rule(
        "backend",
        "in_train_phase",
        "the learning phase is gone: branch on the training argument of call()",
    ),
    Rule(
        "backend",
        "in_test_phase",
        "the learning phase is gone: branch on the training argument of call()",
    ),
    Rule("backend", "batch_dot", "use keras.ops.einsum or keras.ops.matmul"),
    Rule("backend", "map_fn", "use keras.ops.map"),
    Rule("backend", "batch_flatten", "use keras.ops.reshape(x, (keras.ops.shape(x)[0], -1))"),
    Rule("backend", "flatten", "use keras.ops.reshape(x, (-1,))"),
    Rule("backend", "gather", "use keras.ops.take(x, indices, axis=0)"),
    Rule("backend", "permute_dimensions", "use keras.ops.transpose(x, axes)"),
    Rule("backend", "pow", "use keras.ops.power"),
    Rule(
        "backend",
        "l2_normalize",
        "use keras.utils.normalize or x / keras.ops.norm(x, axis=..., keepdims=True)",
    ),
    Rule("backend", "repeat_elements", "use keras.ops.repeat(x, rep, axis=axis)"),
    Rule("backend", "reverse", "use keras.ops.flip"),
    Rule("backend", "bias_add", "use x + bias"),
    Rule(
        "backend",
        "count_params",
        "use layer.count_params() or sum(keras.ops.size(w) for w in weights)",
    ),
    Rule("backend", "random_normal", "use keras.random.normal"),
    Rule("backend", "random_uniform", "use keras.random.uniform"),
    Rule("backend", "truncated_normal", "use keras.random.truncated_normal"),
    Rule("backend", "random_binomial", "use keras.random.binomial"),
    Rule("backend", "dropout", "use keras.random.dropout"),
    Rule("backend", "conv1d", "use keras.ops.conv"),
    Rule("backend", "conv2d", "use keras.ops.conv"),
    Rule("backend", "conv3d", "use keras.ops.conv"),
    Rule("backend", "conv2d_transpose", "use keras.ops.conv_transpose"),
    Rule("backend", "depthwise_conv2d", "use keras.ops.depthwise_conv"),
    Rule("backend", "separable_conv2d", "use keras.ops.separable_conv"),
    Rule("backend", "pool2d", "use keras.ops.max_pool or keras.ops.average_pool"),
    Rule("backend", "pool3d", "use keras.ops.max_pool or keras.ops.average_pool"),
    Rule("backend", "rnn", "use keras.layers.RNN with a cell"),
    Rule("backend", "ctc_batch_cost", "use keras.losses.CTC or keras.ops.ctc_loss"),
    Rule("backend", "image_dim_ordering", "use keras.backend.image_data_format()"),
    Rule("backend", "set_image_dim_ordering", "use keras.backend.set_image_data_format()"),
    Rule("backend", "name_scope", "use keras.name_scope"),
    Rule("backend", "update", "use variable.assign(value)"),
    Rule("backend", "update_add", "use variable.assign_add(value)"),
    Rule("backend", "update_sub", "use variable.assign_sub(value)"),
    Rule("backend", "cast_to_floatx", "use keras.ops.cast(x, keras.backend.floatx())"),
    # -- Keras 2 model loading: kutils's functions read Keras 2 files (Keras 3's misread them)
    Rule(
        "name",
        "keras.models.load_model",
        "Keras 3's load_model misreads Keras 2 .h5 files: use kutils.load_model",
        keras3="kutils.load_model",
    ),
    Rule(
        "name",
        "keras.models.model_from_json",
        "Keras 3's model_from_json misreads Keras 2 JSON: use kutils.model_from_json",
        keras3="kutils.model_from_json",
    ),
    Rule(
        "name",
        "keras.models.model_from_yaml",
        "Keras 3 has no model_from_yaml: use kutils.model_from_yaml",
        keras3="kutils.model_from_yaml",
    ),
    # -- loss and metric aliases Keras 3 removed: to the same function's Keras 3 name
    Rule(
        "name",
        "keras.losses.mse",
        "use keras.losses.mean_squared_error",
        keras3="mean_squared_error",
    ),
    Rule(
        "name",
        "keras.losses.MSE",
        "use keras.losses.mean_squared_error",
        keras3="mean_squared_error",
    ),
    Rule(
        "name",
        "keras.losses.mae",
        "use keras.losses.mean_absolute_error",
        keras3="mean_absolute_error",
    ),
    Rule(
        "name",
        "keras.losses.MAE",
        "use keras.losses.mean_absolute_error",
        keras3="mean_absolute_error",
    ),
    Rule(
        "name",
        "keras.losses.mape",
        "use keras.losses.mean_absolute_percentage_error",
        keras3="mean_absolute_percentage_error",
    ),
    Rule(
        "name",
        "keras.losses.MAPE",
        "use keras.losses.mean_absolute_percentage_error",
        keras3="mean_absolute_percentage_error",
    ),
    Rule(
        "name",
        "keras.losses.msle",
        "use keras.losses.mean_squared_logarithmic_error",
        keras3="mean_squared_logarithmic_error",
    ),
    Rule(
        "name",
        "keras.losses.MSLE",
        "use keras.losses.mean_squared_logarithmic_error",
        keras3="mean_squared_logarithmic_error",
    ),
    Rule("name", "keras.losses.logcosh", "use keras.losses.log_cosh", keras3="log_cosh"),
    Rule(
        "name",
        "keras.metrics.mse",
        "use keras.metrics.mean_squared_error",
        keras3="mean_squared_error",
    ),
    Rule(
        "name",
        "keras.metrics.MSE",
        "use keras.metrics.mean_squared_error",
        keras3="mean_squared_error",
    ),
    Rule(
        "name",
        "keras.metrics.mae",
        "use keras.metrics.mean_absolute_error",
        keras3="mean_absolute_error",
    ),
    Rule(
        "name",
        "keras.metrics.MAE",
        "use keras.metrics.mean_absolute_error",
        keras3="mean_absolute_error",
    ),
    Rule(
        "name",
        "keras.metrics.mape",
        "use keras.metrics.mean_absolute_percentage_error",
        keras3="mean_absolute_percentage_error",
    ),
    Rule(
        "name",
        "keras.metrics.MAPE",
        "use keras.metrics.mean_absolute_percentage_error",
        keras3="mean_absolute_percentage_error",
    ),
    Rule(
        "name",
        "keras.metrics.msle",
        "use keras.metrics.mean_squared_logarithmic_error",
        keras3="mean_squared_logarithmic_error",
    ),
    Rule(
        "name",
        "keras.metrics.MSLE",
        "use keras.metrics.mean_squared_logarithmic_error",
        keras3="mean_squared_logarithmic_error",
    ),
    Rule("name", "keras.metrics.logcosh", "use keras.metrics.log_cosh", keras3="log_cosh"),
    Rule("name", "keras.losses.kld", "use keras.losses.kl_divergence", keras3="kl_divergence"),
    Rule("name", "keras.losses.KLD", "use keras.losses.kl_divergence", keras3="kl_divergence"),
    Rule(
        "name",
        "keras.losses.kullback_leibler_divergence",
        "use keras.losses.kl_divergence",
        keras3="kl_divergence",
    ),
    Rule(
        "name",
        "keras.losses.cosine",
        "use keras.losses.cosine_similarity",
        keras3="cosine_similarity",
    ),
    Rule(
        "name",
        "keras.losses.cosine_proximity",
        "use keras.losses.cosine_similarity",
        keras3="cosine_similarity",
    ),
    # -- numpy's aliases of builtins, removed in numpy 1.24: to the builtin numpy names
    Rule("numpy", "numpy.float", "np.float is gone from numpy 1.24 on: use float", keras3="float"),
    Rule("numpy", "numpy.int", "np.int is gone from numpy 1.24 on: use int", keras3="int"),
    Rule("numpy", "numpy.bool", "np.bool is gone from numpy 1.24 on: use bool", keras3="bool"),
    Rule(
        "numpy", "numpy.object", "np.object is gone from numpy 1.24 on: use object", keras3="object"
    ),
    Rule("numpy", "numpy.str", "np.str is gone from numpy 1.24 on: use str", keras3="str"),
    Rule(
        "numpy",
        "numpy.complex",
        "np.complex is gone from numpy 1.24 on: use complex",
        keras3="complex",
    ),
    Rule("numpy", "numpy.long", "np.long is gone from numpy 1.24 on: use int", keras3="int"),
    Rule("numpy", "numpy.unicode", "np.unicode is gone from numpy 1.24 on: use str", keras3="str"),
    # -- methods Keras 3 models no longer have, on any receiver
    Rule(
        "method",
        "fit_generator",
        "Keras 3 models have no fit_generator: call kutils.fit_generator(model, ...) instead",
        keras3="kutils.fit_generator",
    ),
    Rule(
        "method",
        "evaluate_generator",
        "Keras 3 models have no evaluate_generator: call kutils.evaluate_generator(model, ...) instead",
        keras3="kutils.evaluate_generator",
    ),
    Rule(
        "method",
        "predict_generator",
        "Keras 3 models have no predict_generator: call kutils.predict_generator(model, ...) instead",
        keras3="kutils.predict_generator",
    ),
    Rule(
        "method",
        "predict_classes",
        "Keras 3 models have no predict_classes: call kutils.predict_classes(model, ...) instead",
        keras3="kutils.predict_classes",
    ),
    Rule(
        "method",
        "predict_proba",
        "Keras 3 models have no predict_proba: call kutils.predict_proba(model, ...) instead",
        keras3="kutils.predict_proba",
    ),
    Rule(
        "method", "_make_predict_function", "Keras 3 has no _make_predict_function: remove the call"
    ),
    Rule(
        "method",
        "reset_states",
        "Keras 3 models have no reset_states: call kutils.reset_states(model) instead",
        keras3="kutils.reset_states",
    ),
    Rule("method", "_make_train_function", "Keras 3 has no _make_train_function: remove the call"),
    Rule("method", "_make_test_function", "Keras 3 has no _make_test_function: remove the call"),
    # -- a loss added to a model from outside a layer: Keras 2 took symbolic tensors
    Rule(
        "outside-method",
        "add_loss",
        "Keras 3 rejects add_loss with a symbolic tensor of a functional model: call kutils.add_loss(model, loss) instead",
        keras3="kutils.add_loss",
    ),
    # -- a method Keras 3 still has, rewritten only when called with what Keras 3 lost:
    # Keras 2's class_weight of a model with several outputs (a list or dict of dicts).
    Rule(
        "method-keyword",
        "train_on_batch",
        "Keras 3's train_on_batch takes class_weight for one output only: call kutils.train_on_batch(model, x, y, class_weight=...) instead",
        keras3="kutils.train_on_batch",
        within=("class_weight",),
    ),
    # -- keyword arguments Keras 3 rejects, in the calls named by `within`
    Rule(
        "keyword",
        "samples_per_epoch",
        "Keras 1's samples_per_epoch: pass steps_per_epoch (batches, not samples)",
        within=_GENERATOR_CALLS,
    ),
    Rule("keyword", "nb_epoch", "Keras 1's nb_epoch: pass epochs", within=_GENERATOR_CALLS),
    Rule(
        "keyword",
        "nb_val_samples",
        "Keras 1's nb_val_samples: pass validation_steps (batches, not samples)",
        within=_GENERATOR_CALLS,
    ),
    Rule("keyword", "nb_worker", "Keras 1's nb_worker: pass workers", within=_GENERATOR_CALLS),
    Rule(
        "keyword",
        "pickle_safe",
        "Keras 1's pickle_safe: pass use_multiprocessing",
        within=_GENERATOR_CALLS,
    ),
    Rule(
        "keyword",
        "max_q_size",
        "Keras 1's max_q_size: pass max_queue_size",
        within=_GENERATOR_CALLS,
    ),
    Rule(
        "keyword",
        "val_samples",
        "Keras 1's val_samples: pass steps (batches, not samples)",
        within=_GENERATOR_CALLS,
    ),
    Rule(
        "keyword",
        "lr",
        "Keras 3 optimizers reject lr=: pass learning_rate=",
        keras3="learning_rate",
        within=("keras.optimizers.",),
    ),
    Rule(
        "keyword",
        "decay",
        "Keras 3 optimizers reject decay=: pass learning_rate=keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay), Keras 2's lr / (1 + decay * iterations)",
        keras3="keras.optimizers.schedules.InverseTimeDecay",
        within=("keras.optimizers.",),
    ),
    Rule(
        "keyword",
        "weights",
        "Keras 3 layers reject weights=: build the layer, then call layer.set_weights(weights) (or pass the values through embeddings_initializer=keras.initializers.Constant(...))",
        within=("keras.layers.",),
    ),
    # A fixed batch for a Sequential model's input (stateful RNNs): kutils._migrate_batch
    Rule(
        "keyword",
        "batch_size",
        "Keras 3 layers reject batch_size=: Keras 2 used it with input_shape= only on a Sequential model's first layer, as the input's batch size; put keras.Input(shape=..., batch_size=...) first in the model (model.add(keras.Input(...)) or Sequential([keras.Input(...), ...])) and remove the layer's batch_size= and input_shape=; elsewhere Keras 2 ignored it: remove it (a functional model takes keras.Input(..., batch_size=...))",
        keras3="keras.Input",
        within=("keras.layers.",),
    ),
    Rule(
        "keyword",
        "batch_input_shape",
        "Keras 3 layers reject batch_input_shape=: Keras 2 used it only on a Sequential model's first layer, as the input's shape with its batch size; put keras.Input(batch_shape=...) first in the model (model.add(keras.Input(...)) or Sequential([keras.Input(...), ...])) and remove the layer's batch_input_shape=; elsewhere Keras 2 ignored it: remove it (a functional model takes keras.Input(batch_shape=...))",
        keras3="keras.Input",
        within=("keras.layers.",),
    ),
    # -- Keras 2.3.1 defaults that Keras 3 changed silently: written out (kutils._migrate_defaults)
    Rule(
        "default",
        "keras.layers.GRU",
        "Keras 3's GRU defaults to reset_after=True, Keras 2.3.1's to False (other weights, other outputs): pass reset_after=False",
        keras3="False",
        within=("reset_after", "22"),
    ),
    Rule(
        "default",
        "keras.layers.GRUCell",
        "Keras 3's GRUCell defaults to reset_after=True, Keras 2.3.1's to False (other weights, other outputs): pass reset_after=False",
        keras3="False",
        within=("reset_after", "16"),
    ),
    Rule(
        "default",
        "keras.layers.ConvLSTM2D",
        "Keras 2.3.1's ConvLSTM2D defaults to recurrent_activation='hard_sigmoid', clip(0.2 * x + 0.5, 0, 1); Keras 3's to 'sigmoid' (and Keras 3's 'hard_sigmoid' is relu6(x + 3) / 6): pass recurrent_activation=kutils.backend.hard_sigmoid for Keras 2's",
        within=("recurrent_activation", "7"),
    ),
    Rule(
        "default",
        "keras.optimizers.Adadelta",
        "Keras 3's Adadelta defaults to learning_rate=0.001, Keras 2.3.1's to 1.0: pass learning_rate=1.0",
        keras3="1.0",
        within=("learning_rate", "0", "lr", "decay"),
    ),
    Rule(
        "default",
        "keras.optimizers.Adagrad",
        "Keras 3's Adagrad defaults to learning_rate=0.001, Keras 2.3.1's to 0.01: pass learning_rate=0.01",
        keras3="0.01",
        within=("learning_rate", "0", "lr", "decay"),
    ),
    Rule(
        "default",
        "keras.optimizers.Adagrad",
        "Keras 3's Adagrad starts its accumulators at 0.1, Keras 2.3.1's at 0: pass initial_accumulator_value=0.0",
        keras3="0.0",
        within=("initial_accumulator_value", ""),
    ),
    Rule(
        "default",
        "keras.optimizers.Adamax",
        "Keras 3's Adamax defaults to learning_rate=0.001, Keras 2.3.1's to 0.002: pass learning_rate=0.002",
        keras3="0.002",
        within=("learning_rate", "0", "lr", "decay"),
    ),
    Rule(
        "default",
        "keras.optimizers.Nadam",
        "Keras 3's Nadam defaults to learning_rate=0.001, Keras 2.3.1's to 0.002: pass learning_rate=0.002",
        keras3="0.002",
        within=("learning_rate", "0", "lr"),
    ),
    Rule(
        "default",
        "keras.optimizers.Nadam",
        "Keras 3's Nadam warms its momentum up with 0.96 ** step, Keras 2.3.1's with 0.96 ** (0.004 * step) (schedule_decay): training differs and no Keras 3 argument restores it; use Adam, or keep Keras 2's Nadam in your code",
    ),
    Rule(
        "keyword",
        "schedule_decay",
        "Keras 3's Nadam has no schedule_decay (its momentum schedule is fixed at 0.96 ** step)",
        within=("keras.optimizers.",),
    ),
    # -- the same optimizers named in compile: to the class, with Keras 2's defaults
    *(
        Rule(
            "optimizer-name",
            name.lower(),
            f"compile(optimizer='{name.lower()}') builds Keras 3's {name}, whose defaults differ from Keras 2.3.1's: pass keras.optimizers.{name}(...) with Keras 2's values",
            keras3=f"keras.optimizers.{name}",
            within=(".compile",),
        )
        for name in ("Adadelta", "Adagrad", "Adamax", "Nadam")
    ),
    # -- callbacks whose mode='auto' Keras 2 inferred from the monitored name
    Rule(
        "callback-mode",
        "keras.callbacks.ModelCheckpoint",
        "Keras 2 inferred mode='max' when 'acc' is in monitor or it starts with 'fmeasure', else 'min'; Keras 3 infers from the metric object: pass mode= explicitly",
        keras3="mode",
        within=("acc", "fmeasure"),
    ),
    Rule(
        "callback-mode",
        "keras.callbacks.EarlyStopping",
        "Keras 2 inferred mode='max' when 'acc' is in monitor, else 'min'; Keras 3 infers from the metric object: pass mode= explicitly",
        keras3="mode",
        within=("acc",),
    ),
    Rule(
        "callback-mode",
        "keras.callbacks.ReduceLROnPlateau",
        "Keras 2 inferred mode='max' when 'acc' is in monitor, else 'min'; Keras 3 infers from the metric object: pass mode= explicitly",
        keras3="mode",
        within=("acc",),
    ),
    # -- TensorBoard arguments Keras 2.3.1 ignored under TensorFlow 2 (it warned that
    # they were ignored and did not pass them on); Keras 3 rejects them: removed
    *(
        Rule(
            "ignored-keyword",
            keyword,
            f"Keras 2.3.1 ignored TensorBoard's {keyword}= under TensorFlow 2 and Keras 3 rejects it: remove it",
            keras3="",
            within=("keras.callbacks.TensorBoard",),
        )
        for keyword in (
            "batch_size",
            "write_grads",
            "embeddings_freq",
            "embeddings_layer_names",
            "embeddings_metadata",
            "embeddings_data",
        )
    ),
    # -- Keras 2's image iterators had next() (Python 2's spelling); Keras 3's have __next__
    Rule(
        "iterator-next",
        "next",
        "Keras 3's image iterators have no next() method: call next(iterator)",
        keras3="next",
        within=(
            "keras.preprocessing.image.ImageDataGenerator",
            "kutils.preprocessing.ImageDataGenerator",
        ),
    ),
    # -- a file name built at run time (format, f-string, %, +) given to a saving call
    Rule(
        "saving-built",
        ".h5",
        "this weights or model file name is built at run time and ends in .h5: Keras 3's save_weights needs a name ending in .weights.h5 and ModelCheckpoint .keras or .weights.h5; rename it in every save and load (files Keras 2 wrote keep .h5 for loading)",
        within=("ModelCheckpoint", "save", "save_model", "save_weights"),
    ),
    # -- a file name given to a saving call: reported when it ends in .h5 or .hdf5
    Rule(
        "saving",
        ".h5",
        "Keras 3 saves models in the .keras format: model.save('x.h5') writes legacy HDF5 with a warning, save_weights needs a name ending in .weights.h5, and ModelCheckpoint needs .keras (or .weights.h5 with save_weights_only=True)",
        within=("ModelCheckpoint", "save", "save_model", "save_weights"),
    ),
    # -- save_weights/load_weights with a name the weights-name rule cannot rename
    Rule(
        "weights-call",
        "save_weights",
        "Keras 3's save_weights needs a name ending in .weights.h5: call kutils.save_weights(model, name), which writes Keras 2's HDF5 weights file at any name",
        keras3="kutils.save_weights",
    ),
    Rule(
        "weights-call",
        "load_weights",
        "Keras 3's load_weights reads only .keras, .weights.h5, .h5 and .hdf5 names: call kutils.load_weights(model, name), which reads Keras 2 and Keras 3 weights files at any name",
        keras3="kutils.load_weights",
    ),
    # -- a flat metrics list for a model with several outputs (Keras 2: every output)
    Rule(
        "compile-metrics",
        "metrics",
        "Keras 2 applied a flat metrics list to every output; Keras 3 fails on a model with several outputs (tuple arity mismatch): give one list per output, metrics=[[...], [...]] (or a dict by output name)",
        keras3="metrics",
    ),
    # -- compile in a file that changes trainable: Keras 2 trained the weights trainable
    # at compile time, Keras 3 those trainable at the first step (the GAN pattern)
    Rule(
        "trainable-compile",
        "compile",
        "Keras 2 trained the weights trainable when compile ran (a discriminator frozen after its compile kept training); Keras 3 reads trainable at the first training step: call kutils.compile(model, ...)",
        keras3="kutils.compile",
    ),
    # -- a custom layer or model that Keras 3 cannot rebuild on loading
    Rule(
        "custom-object",
        "__init__ without get_config",
        "custom layer/model {name} takes __init__ arguments but has no get_config: Keras 3 saves and reloads it through get_config()/from_config(); add get_config returning those arguments (and from_config if they hold layers or other objects)",
    ),
)


def _backend_rewrite(rule: Rule) -> Rule:
    """A ``backend`` rule with its Keras 3 form (``kutils._migrate_backend``), if any."""
    keras3 = _migrate_backend.target(rule.keras2) if rule.kind == "backend" else None
    if keras3 is None:
        return rule
    return Rule(rule.kind, rule.keras2, f"use {keras3}", keras3=keras3)


RULES = tuple(_backend_rewrite(rule) for rule in RULES)


def by_kind(kind: str, rules: Iterable[Rule] = RULES) -> dict[str, Rule]:
    """The rules of one kind, by what they match."""
    return {rule.keras2: rule for rule in rules if rule.kind == kind}


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

# keras.backend functions that Keras 3 keeps in keras.backend: not reported.
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

# Base classes of custom objects that Keras 3 rebuilds from get_config() on loading.
CUSTOM_OBJECT_BASES = frozenset(
    {
        "keras.Layer",
        "keras.Model",
        "keras.engine.Layer",
        "keras.engine.Model",
        "keras.engine.base_layer.Layer",
        "keras.engine.topology.Layer",
        "keras.engine.training.Model",
        "keras.layers.Layer",
        "keras.models.Model",
    }
)
