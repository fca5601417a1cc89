-- mf.nn: modules over one flat parameter buffer.
--   Module            parameters(), named_parameters() (iterator), state_dict(),
--                     load_state_dict(sd, {strict}), train(), eval(), zero_grad(),
--                     flatten({dtype}), flat_parameters(), flat_gradients(), to(dtype),
--                     clone_structure(flat), call syntax m(...) -> m:forward(...)
--   Linear(in, out, {zero_init, bias, rngs | generator, dtype})   lin(x [, act [, residual]])
--   LayerNorm(dim, {eps, elementwise_affine, dtype})              ln(x [, added [, act]])
--   Embedding(num, dim, {null_row, std, ...}), TimestepEmbedding(hidden, {freq_dim, scale, max_period})
--   Sequential(...), ModuleList{...}, MLP{sizes, act, zero_init_last}, Dropout(p, {rngs})
--   SiLU, GELU, ReLU, Tanh, Sigmoid, Identity
--   VelocityMLP{dim, hidden, depth, num_classes, use_dt, rngs, dtype, t_scale}:
--     net(x, t, cond) -> out, features
--   functional (F): linear, layer_norm (fused kernels), their *_composite
--     references, timestep_features, dropout
local L = require "moonflow.nn.layers"

local nn = {
  Module = require "moonflow.nn.module",
  functional = require "moonflow.nn.functional",
}
for k, v in pairs(L) do nn[k] = v end
nn.VelocityMLP = require "moonflow.nn.velocity_mlp"
nn.F = nn.functional
return nn
