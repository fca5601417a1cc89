-- DMD2 distillation of the two_moons_sit teacher (its EMA weights) into a
-- 1-step student; the teacher is trained first when its checkpoint is
-- missing. Student and fake score start as copies of the teacher. Measured
-- from a fresh clone (PoCL CPU, quiet, teacher from the main job): 1:21 of
-- distillation; the 1-step student at 1.76x the energy-distance floor beside
-- the 50-step teacher at 1.15x, sampling 2000 points in 0.017 s against 0.60 s.
-- A 4-step student (3:09 here): scripts/moonflow train THIS 'distill.student_t_list={1.0,0.75,0.5,0.25}'
--   distill.fake.init=scratch distill.fake.per_rung=true distill.student_optimizer.lr=2e-4 steps=2000
--   out=runs/two_moons_dmd2_4step
-- measured: 4 steps at 1.53x the floor, its first step alone at 2.02x (the teacher 0.78x in
-- that evaluation: sets of 2000 scatter around the floor). At steps=1000: 4.62x and 3.41x; with
-- one fake score for all rungs (per_rung=false, the default, as in DMD2) 12.51x and 28.70x there.
return {
  seed = 0,
  distill = {
    teacher = "runs/two_moons_sit/checkpoint.safetensors",
    teacher_config = "scripts/configs/two_moons_sit.lua",
    student = { init = "teacher" },
    fake = { init = "teacher", train_time_dist_type = "uniform" },
    student_t_list = { 1.0 },
    sample_t_cfg = { time_dist_type = "uniform", min_t = 0.02, max_t = 0.98 },
    fake_score_updates = 5,
    gan_loss_weight = 0,
    student_optimizer = { lr = 5e-4, betas = { 0.9, 0.999 }, schedule = "cosine" },
    fake_optimizer = { lr = 1e-3, betas = { 0.9, 0.999 } },
  },
  ema = { decay = 0.99 },
  steps = 1500,
  batch = 128,
  eval_n = 2000,
  out = "runs/two_moons_dmd2",
  log_every = 50,
  checkpoint_every = 200,
}
