-- mf.distill: few-step distillation of a moonflow teacher.
--   DMD2{teacher, student, fake, student_t_list, sample_t_cfg, guidance_scale,
--        fake_score_updates, gan_loss_weight, ...}  (distill/dmd2.lua)
--   x0_prediction(iface, x_t, t, cond) -> x0, features on the rf path (distill/x0.lua)
--   GANHead, gan_generator_loss, gan_discriminator_loss (distill/gan.lua)
local DMD2 = require "moonflow.distill.dmd2"
local X = require "moonflow.distill.x0"
local G = require "moonflow.distill.gan"

return {
  DMD2 = DMD2,
  clone_network = DMD2.clone_network,
  x0_prediction = X.predict,
  guided_x0 = X.guided,
  GANHead = G.Head,
  gan_generator_loss = G.generator_loss,
  gan_discriminator_loss = G.discriminator_loss,
}
