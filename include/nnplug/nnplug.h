/* nnplug: umbrella header. */
#ifndef NNPLUG_H
#define NNPLUG_H
#include "plugin.h"
#include "status.h"
#include "tensor.h"
#include "rng.h"
#include "dist.h"
#include "config.h"
#include "services.h"
#include "registry.h"
#include "layer.h"
#include "io.h"
#include "model.h"
#include "keras.h"
#include "train.h"
#define NNP_VERSION_STRING "0.1.0"
#endif
