// Package protocol reads and writes the bodies of the prediction protocols
// mloop serves: the Open Inference Protocol (KServe V2) REST inference
// request and response, KServe V1 ({"instances": …} → {"predictions": …}),
// and MLflow's scoring-server format ("dataframe_split",
// "dataframe_records", "instances", "inputs"). It holds pure functions the
// HTTP layer calls; routing lives elsewhere.
//
// Decoders turn a body into a serving.Batch for a model's features without
// reflection: a small scanner reads the JSON in place, which keeps a
// single-row request cheap, and accepts the NaN, Infinity and -Infinity
// literals that Python's json module writes. Everywhere, JSON null and NaN
// mean a missing value (NaN in the batch).
//
// Choices where the protocols leave room, made once for all formats:
//
//   - Categorical features take non-negative integer codes only; strings
//     are not mapped to categories.
//   - In row formats (KServe V1, MLflow), keys and columns that name no
//     feature are ignored, as MLflow's schema enforcement does; every
//     feature is still required. OIP inputs are tensors the model declares,
//     so an OIP input that names no feature is an error, as in Triton.
//   - Infinity and -Infinity are kept as ±Inf; the runtime decides what
//     they mean. Encoders write NaN and ±Inf predictions as null.
//   - Rows in error messages count from 0.
//   - Empty batches are errors, and so are batches over the caller's row
//     limit (DefaultMaxRows when none is given).
//
// Malformed JSON is mloop.EBADREQUEST; a well-formed body that does not fit
// the model is mloop.EINVALID. Both are 400s; messages name the input, the
// row and the feature, and say what to send instead.
package protocol
