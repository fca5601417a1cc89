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
--   MultiHeadAttention{dim, num_heads, qkv_bias}, DiTBlock{hidden_size, num_heads, mlp_ratio},
--   DiT{input_size, patch_size, in_channels, hidden_size, depth, num_heads, ...} (nn/dit.lua)
--   functional (F): linear, layer_norm (fused kernels), their *_composite
--     references, timestep_features, dropout
local L = require "moonflow.nn.layers"

local nn = {
  Module = require "moonflow.nn.module",
  functional = require "moonflow.nn.functional",
}
for k, v in pairs(L) do nn[k] = v end
nn.VelocityMLP = require "moonflow.nn.velocity_mlp"
-- the DiT's public modules (its Mlp, PatchEmbed and pos_embed serve nn/vit.lua only)
local dit = require "moonflow.nn.dit"
for _, k in ipairs { "MultiHeadAttention", "DiTBlock", "DiT" } do nn[k] = dit[k] end
nn.ViT = require("moonflow.nn.vit").ViT
nn.F = nn.functional
return nn
