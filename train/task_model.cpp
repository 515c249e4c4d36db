// TaskModel (implementation in progress).
#include "train/task_model.h"
