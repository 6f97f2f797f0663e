# ruff: noqa
# (kept in the style of its time)
"""A Keras 2 era data-generator script, written the way the well-known tutorial of the time was.

A ``keras.utils.Sequence`` subclass reached through ``import keras``, trained with
``model.fit_generator(..., use_multiprocessing=True, workers=6)`` at the top level of the
script, with no ``if __name__ == '__main__':`` guard. tests/test_keras2_scripts.py moves it
to Keras 3 with ``kutils migrate`` alone and runs it.
"""

import numpy as np
import keras
from keras.models import Sequential
from keras.layers import Dense


class DataGenerator(keras.utils.Sequence):
    'Generates data for Keras'
    def __init__(self, list_IDs, labels, batch_size=16, dim=(4,), n_classes=2, shuffle=True):
        'Initialization'
        self.dim = dim
        self.batch_size = batch_size
        self.labels = labels
        self.list_IDs = list_IDs
        self.n_classes = n_classes
        self.shuffle = shuffle
        self.on_epoch_end()

    def __len__(self):
        'Denotes the number of batches per epoch'
        return int(np.floor(len(self.list_IDs) / self.batch_size))

    def __getitem__(self, index):
        'Generate one batch of data'
        indexes = self.indexes[index*self.batch_size:(index+1)*self.batch_size]
        list_IDs_temp = [self.list_IDs[k] for k in indexes]
        X, y = self.__data_generation(list_IDs_temp)
        return X, y

    def on_epoch_end(self):
        'Updates indexes after each epoch'
        self.indexes = np.arange(len(self.list_IDs))
        if self.shuffle == True:
            np.random.shuffle(self.indexes)

    def __data_generation(self, list_IDs_temp):
        'Generates data containing batch_size samples'
        X = np.empty((self.batch_size, *self.dim), dtype='float32')
        y = np.empty((self.batch_size), dtype=int)
        for i, ID in enumerate(list_IDs_temp):
            X[i,] = np.random.RandomState(ID).rand(*self.dim)
            y[i] = self.labels[ID]
        return X, keras.utils.to_categorical(y, num_classes=self.n_classes)


# Parameters
params = {'dim': (4,),
          'batch_size': 16,
          'n_classes': 2,
          'shuffle': True}

# Datasets
partition = {'train': list(range(192)), 'validation': list(range(192, 256))}
labels = {ID: int(np.random.RandomState(ID).rand(4)[0] > 0.5) for ID in range(256)}

# Generators
training_generator = DataGenerator(partition['train'], labels, **params)
validation_generator = DataGenerator(partition['validation'], labels, **params)

# Design model
model = Sequential()
model.add(Dense(16, activation='relu', input_shape=(4,)))
model.add(Dense(2, activation='softmax'))
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# Train model on dataset
history = model.fit_generator(generator=training_generator,
                              validation_data=validation_generator,
                              epochs=3,
                              use_multiprocessing=True,
                              workers=6,
                              verbose=0)
print('EPOCHS', len(history.history['loss']))
print('VAL_ACCURACY', history.history['val_accuracy'][-1])
