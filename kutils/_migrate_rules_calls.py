"""The rules of ``kutils migrate`` about calls: removed methods, keyword arguments, changed
defaults, callbacks, iterators, saving calls, compile and custom objects. One entry per
rule; the kinds are described in ``kutils._migrate_rules``.
"""

from __future__ import annotations

from kutils._migrate_rule import Rule

# The calls of the generator methods, for the keyword rules that apply to them.
_GENERATOR_CALLS = (".fit_generator", ".evaluate_generator", ".predict_generator")

CALL_RULES: tuple[Rule, ...] = (
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
    # -- Keras 2's predict read 1-D arrays as columns and used the first input's length;
    # every call that can be Keras 2's (only its arguments) is rewritten: kutils.predict
    # calls a receiver's own predict when it is not a Keras model (docs/migrate.md).
    Rule(
        "outside-method",
        "predict",
        "Keras 3's predict refuses 1-D inputs of (n, 1) models and inputs of different lengths: call kutils.predict(model, x) instead",
        keras3="kutils.predict",
        within=(
            "x",
            "batch_size",
            "verbose",
            "steps",
            "callbacks",
            "max_queue_size",
            "workers",
            "use_multiprocessing",
        ),
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
    Rule(
        "method-keyword",
        "fit",
        "Keras 3's fit takes class_weight for one output only, and not with sample_weight: call kutils.fit(model, x, y, class_weight=...) instead",
        keras3="kutils.fit",
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
    # -- compile's arguments after loss given by position: Keras 3 orders them otherwise
    Rule(
        "compile-positional",
        "compile",
        "Keras 2's compile took metrics third and loss_weights fourth, Keras 3's takes loss_weights third (a metrics list passed third is read as loss weights): pass the arguments after loss by name (metrics=[...], loss_weights=[...])",
        keras3="keywords",
        within=(
            "optimizer",
            "loss",
            "metrics",
            "loss_weights",
            "sample_weight_mode",
            "weighted_metrics",
            "target_tensors",
        ),
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
