"""The oracle's model zoo: the same Keras models built under Keras 2.3.1 and Keras 3.

Every layer and model is named, so that the two sides print the same names. Only layers
and arguments whose meaning did not change between Keras 2.3.1 and Keras 3 are used
(GRU with an explicit ``reset_after``; no Keras 2-only layers).
"""

from __future__ import annotations

import keras

from _shim import layers

L = layers


def _seq(name, *stack):
    return keras.Sequential(list(stack), name=name)


def _fn(name, inputs, outputs):
    return keras.Model(inputs, outputs, name=name)


def mlp():
    return _seq("mlp", L.Dense(32, input_shape=(784,), name="d1"), L.Dense(10, name="d2"))


def mlp_dropout():
    return _seq(
        "mlp_dropout",
        L.Dense(64, activation="relu", input_shape=(20,), name="d1"),
        L.Dropout(0.5, name="drop"),
        L.Dense(64, activation="relu", name="d2"),
        L.Dropout(0.5, name="drop2"),
        L.Dense(10, activation="softmax", name="out"),
    )


def cnn():
    return _seq(
        "cnn",
        L.Conv2D(8, (3, 3), input_shape=(28, 28, 1), name="conv1"),
        L.MaxPooling2D((2, 2), name="pool1"),
        L.Conv2D(16, (3, 3), padding="same", name="conv2"),
        L.Flatten(name="flat"),
        L.Dense(10, name="logits"),
    )


def cnn_bn():
    return _seq(
        "cnn_bn",
        L.Conv2D(4, 3, input_shape=(16, 16, 3), name="c"),
        L.BatchNormalization(name="bn"),
        L.Activation("relu", name="act"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(2, name="o"),
    )


def conv1d():
    return _seq(
        "conv1d",
        L.Conv1D(6, 5, input_shape=(50, 3), name="c1"),
        L.MaxPooling1D(2, name="p1"),
        L.GlobalMaxPooling1D(name="gmp"),
        L.Dense(1, name="o"),
    )


def embedding_lstm():
    return _seq(
        "embedding_lstm",
        L.Embedding(1000, 16, input_shape=(20,), name="emb"),
        L.LSTM(8, name="lstm"),
        L.Dense(1, activation="sigmoid", name="o"),
    )


def stacked_rnn():
    return _seq(
        "stacked_rnn",
        L.SimpleRNN(5, return_sequences=True, input_shape=(10, 4), name="r1"),
        L.GRU(6, return_sequences=True, reset_after=False, name="r2"),
        L.LSTM(7, name="r3"),
    )


def gru_reset_after():
    return _seq("gru_ra", L.GRU(6, reset_after=True, input_shape=(5, 3), name="g"))


def bidirectional():
    return _seq(
        "bidirectional",
        L.Bidirectional(
            L.LSTM(4, return_sequences=True, name="inner"), input_shape=(7, 3), name="bi"
        ),
        L.TimeDistributed(L.Dense(2, name="td_dense"), name="td"),
    )


def reshape_permute():
    return _seq(
        "reshape_permute",
        L.Reshape((4, 6), input_shape=(24,), name="rs"),
        L.Permute((2, 1), name="perm"),
        L.Flatten(name="f"),
        L.RepeatVector(3, name="rep"),
    )


def zero_param():
    return _seq(
        "zero_param",
        L.Activation("tanh", input_shape=(5,), name="a1"),
        L.Dropout(0.1, name="dr"),
        L.Activation("relu", name="a2"),
    )


def frozen():
    model = _seq(
        "frozen",
        L.Dense(10, input_shape=(4,), name="trainable_d"),
        L.Dense(10, name="frozen_d", trainable=False),
        L.BatchNormalization(name="bn"),
    )
    return model


def big_dense():
    return _seq(
        "big_dense",
        L.Dense(4096, input_shape=(4096,), name="wide"),
        L.Dense(1000, name="classes"),
    )


def long_names():
    return _seq(
        "a_model_with_a_rather_long_name_indeed",
        L.Dense(3, input_shape=(2,), name="a_layer_name_that_is_far_too_long_for_the_column"),
        L.Dense(1, name="o"),
    )


def two_towers():
    a = L.Input((3,), name="input_a")
    b = L.Input((3,), name="input_b")
    shared = L.Dense(4, name="shared_dense")
    merged = L.Concatenate(name="concat")([shared(a), shared(b)])
    main = L.Dense(1, name="main_output")(merged)
    aux = L.Dense(2, name="aux_output")(shared(b))
    return _fn("two_towers", [a, b], [main, aux])


def functional_chain():
    x = L.Input((8,), name="x")
    h = L.Dense(4, name="h")(x)
    y = L.Dense(2, name="y")(h)
    return _fn("functional_chain", x, y)


def residual():
    x = L.Input((16,), name="x")
    h = L.Dense(16, name="h1")(x)
    h = L.Dense(16, name="h2")(h)
    s = L.Add(name="skip")([x, h])
    return _fn("residual", x, L.Dense(1, name="o")(s))


def inception_like():
    x = L.Input((32, 32, 3), name="img")
    a = L.Conv2D(4, 1, name="b1")(x)
    b = L.Conv2D(4, 3, padding="same", name="b3")(x)
    c = L.Conv2D(4, 5, padding="same", name="b5")(x)
    d = L.MaxPooling2D(3, strides=1, padding="same", name="bp")(x)
    m = L.Concatenate(axis=-1, name="mix")([a, b, c, d])
    return _fn("inception_like", x, L.GlobalAveragePooling2D(name="gap")(m))


def multi_output():
    x = L.Input((10,), name="x")
    h = L.Dense(8, name="trunk")(x)
    return _fn("multi_output", x, [L.Dense(1, name="reg")(h), L.Dense(3, name="cls")(h)])


def multi_input_merge_ops():
    a = L.Input((5,), name="a")
    b = L.Input((5,), name="b")
    s = L.Subtract(name="sub")([a, b])
    m = L.Multiply(name="mul")([a, b])
    mx = L.Maximum(name="max")([s, m])
    av = L.Average(name="avg")([s, m, mx])
    return _fn("merge_ops", [a, b], L.Dot(axes=1, name="dot")([av, a]))


def shared_three_times():
    x = L.Input((4,), name="x")
    d = L.Dense(4, name="loop")
    y = d(d(d(x)))
    return _fn("shared_three_times", x, y)


def nested_sequential():
    enc = _seq("encoder", L.Dense(4, input_shape=(6,), name="enc_dense"))
    x = L.Input((6,), name="features")
    return _fn("nested_seq", x, L.Dense(1, name="head")(enc(x)))


def nested_functional():
    hi = L.Input((4,), name="head_in")
    head = _fn("head", hi, L.Dense(1, name="head_dense")(hi))
    x = L.Input((4,), name="features")
    return _fn("nested_fn", x, head(x))


def twin_called_twice():
    ti = L.Input((3,), name="twin_in")
    twin = _fn("twin", ti, L.Dense(2, name="twin_dense")(ti))
    a = L.Input((3,), name="left")
    b = L.Input((3,), name="right")
    merged = L.Concatenate(name="join")([twin(a), twin(b)])
    return _fn("siamese", [a, b], L.Dense(1, name="score")(merged))


def twin_called_three_times():
    ti = L.Input((3,), name="t_in")
    twin = _fn("tri", ti, L.Dense(2, name="t_dense")(ti))
    ins = [L.Input((3,), name=f"in{i}") for i in range(3)]
    outs = [twin(i) for i in ins]
    return _fn("triplet", ins, L.Add(name="sum")(outs))


def sequential_in_sequential():
    inner = _seq("inner", L.Dense(3, input_shape=(5,), name="i1"), L.Dense(3, name="i2"))
    return _seq("outer", inner, L.Dense(1, name="o"))


def deep_mlp():
    stack = [L.Dense(16, input_shape=(16,), name="l0")]
    stack += [L.Dense(16, name=f"l{i}") for i in range(1, 12)]
    return _seq("deep_mlp", *stack)


def embedding_functional():
    tokens = L.Input((12,), name="tokens", dtype="int32")
    e = L.Embedding(50, 8, name="emb")(tokens)
    p = L.GlobalAveragePooling1D(name="pool")(e)
    return _fn("embedding_fn", tokens, L.Dense(2, name="o")(p))


def conv_transpose():
    return _seq(
        "upsampler",
        L.Conv2DTranspose(4, 3, strides=2, input_shape=(8, 8, 2), name="up"),
        L.UpSampling2D(2, name="up2"),
        L.Cropping2D(1, name="crop"),
        L.ZeroPadding2D(2, name="pad"),
    )


def separable():
    return _seq(
        "separable",
        L.SeparableConv2D(4, 3, input_shape=(12, 12, 3), name="sep"),
        L.DepthwiseConv2D(3, name="dw"),
        L.AveragePooling2D(pool_size=2, name="ap"),
    )


def conv3d():
    return _seq(
        "conv3d",
        L.Conv3D(2, 3, input_shape=(6, 6, 6, 1), name="c3"),
        L.MaxPooling3D(name="p3"),
        L.Flatten(name="f"),
    )


def noise_layers():
    return _seq(
        "noise",
        L.GaussianNoise(0.1, input_shape=(4,), name="gn"),
        L.GaussianDropout(0.1, name="gd"),
        L.AlphaDropout(0.1, name="ad"),
        L.Dense(2, name="o"),
    )


def advanced_activations():
    return _seq(
        "activations",
        L.Dense(6, input_shape=(3,), name="d"),
        L.LeakyReLU(name="lrelu"),
        L.PReLU(name="prelu"),
        L.ELU(name="elu"),
        L.ReLU(name="relu"),
        L.Softmax(name="smax"),
    )


def masking_rnn():
    return _seq(
        "masking",
        L.Masking(0.0, input_shape=(6, 2), name="mask"),
        L.SimpleRNN(3, name="rnn"),
    )


def lambda_free_multi_io():
    a = L.Input((2,), name="a")
    b = L.Input((4,), name="b")
    c = L.Input((6,), name="c")
    ab = L.Concatenate(name="ab")([a, b])
    abc = L.Concatenate(name="abc")([ab, c])
    return _fn("three_inputs", [a, b, c], [L.Dense(1, name="o1")(abc), L.Dense(1, name="o2")(ab)])


def output_used_twice():
    x = L.Input((3,), name="x")
    h = L.Dense(3, name="h")(x)
    return _fn("diamond", x, L.Add(name="add")([L.Dense(3, name="l")(h), L.Dense(3, name="r")(h)]))


def input_as_output():
    x = L.Input((3,), name="x")
    return _fn("passthrough", x, [x, L.Dense(2, name="d")(x)])


def dense_1d_sequence():
    return _seq("dense_seq", L.Dense(5, input_shape=(7, 3), name="d3"), L.Flatten(name="f"))


def conv_lstm():
    return _seq("convlstm", L.ConvLSTM2D(2, 3, input_shape=(4, 8, 8, 1), name="cl"))


def cnn_functional():
    x = L.Input((20, 20, 1), name="img")
    h = L.Conv2D(3, 3, name="c")(x)
    h = L.BatchNormalization(name="bn")(h)
    h = L.Flatten(name="f")(h)
    return _fn("cnn_functional", x, L.Dense(2, name="o")(h))


def siamese_shared_sequential():
    tower = _seq("tower", L.Dense(4, input_shape=(5,), name="t1"), L.Dense(2, name="t2"))
    a = L.Input((5,), name="a")
    b = L.Input((5,), name="b")
    return _fn("shared_tower", [a, b], L.Subtract(name="diff")([tower(a), tower(b)]))


def nested_twice_deep():
    i0 = L.Input((3,), name="i0")
    m0 = _fn("level0", i0, L.Dense(3, name="l0d")(i0))
    i1 = L.Input((3,), name="i1")
    m1 = _fn("level1", i1, m0(i1))
    x = L.Input((3,), name="x")
    return _fn("level2", x, L.Dense(1, name="o")(m1(x)))


def tiny():
    return _seq("tiny", L.Dense(1, input_shape=(1,), name="only"))


def no_bias():
    return _seq(
        "no_bias",
        L.Dense(7, use_bias=False, input_shape=(3,), name="nb"),
        L.Conv1D(2, 1, use_bias=False, name="c")
        if False
        else L.Dense(2, use_bias=False, name="nb2"),
    )


def wide_functional():
    x = L.Input((4,), name="x")
    heads = [L.Dense(1, name=f"head_{i}")(x) for i in range(6)]
    return _fn("wide_fn", x, L.Concatenate(name="all")(heads))


def batchnorm_axis():
    return _seq("bn_axis", L.BatchNormalization(axis=1, input_shape=(3, 5), name="bn1"))


MODELS = [
    mlp, mlp_dropout, cnn, cnn_bn, conv1d, embedding_lstm, stacked_rnn, gru_reset_after,
    bidirectional, reshape_permute, zero_param, frozen, big_dense, long_names, two_towers,
    functional_chain, residual, inception_like, multi_output, multi_input_merge_ops,
    shared_three_times, nested_sequential, nested_functional, twin_called_twice,
    twin_called_three_times, sequential_in_sequential, deep_mlp, embedding_functional,
    conv_transpose, separable, conv3d, noise_layers, advanced_activations, masking_rnn,
    lambda_free_multi_io, output_used_twice, input_as_output, dense_1d_sequence, conv_lstm,
    cnn_functional, siamese_shared_sequential, nested_twice_deep, tiny, no_bias,
    wide_functional, batchnorm_axis,
]  # fmt: skip

_BUILT = {}


def get(builder):
    """The model ``builder`` makes, built once per process."""
    if builder not in _BUILT:
        _BUILT[builder] = builder()
    return _BUILT[builder]
