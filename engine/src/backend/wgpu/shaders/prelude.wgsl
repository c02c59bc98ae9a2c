// Shared by every kernel: the parameter words (binding 0) and the linear invocation index of a
// dispatch that may spill from x into y (65535 workgroups of 64 along x).
@group(0) @binding(0) var<storage, read> params: array<u32>;

fn linear_id(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * 4194240u;
}

fn pf(i: u32) -> f32 {
    return bitcast<f32>(params[i]);
}
